"""Session tokens: a member's token verifies to that member until it expires,
the account goes, its password changes or the key is rotated."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.staff.accounts import StaffDirectory, StaffMember
from streams.staff.errors import AuthenticationError
from streams.staff.tokens import SessionTokens

KEY = b"k" * 32
W1 = StaffMember("nurse-w1", "Nurse W1", ("W1",))


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000_000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture()
def directory(tmp_path: Path) -> StaffDirectory:
    d = StaffDirectory(tmp_path / "staff.json")
    d.add(W1, "correct horse")
    return d


def test_token_verifies_to_its_member_and_expires(directory: StaffDirectory) -> None:
    clock = Clock()
    tokens = SessionTokens(KEY, directory, ttl_s=600, now_s=clock)
    token = tokens.issue(W1)
    assert tokens.verify(token) == W1
    clock.now_s += 599
    assert tokens.verify(token) == W1
    clock.now_s += 1
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify(token)


def test_removed_account_or_new_password_revokes(directory: StaffDirectory) -> None:
    tokens = SessionTokens(KEY, directory)
    token = tokens.issue(W1)
    directory.add(W1, "a new password")  # password set again: old sessions end
    with pytest.raises(AuthenticationError, match="revoked"):
        tokens.verify(token)
    token = tokens.issue(W1)
    assert directory.revoke_tokens("nurse-w1")
    with pytest.raises(AuthenticationError, match="revoked"):
        tokens.verify(token)
    token = tokens.issue(W1)
    directory.remove("nurse-w1")
    with pytest.raises(AuthenticationError, match="revoked"):
        tokens.verify(token)
    directory.add(W1, "correct horse")  # the same name again is a new account
    with pytest.raises(AuthenticationError, match="revoked"):
        tokens.verify(token)


def test_ward_change_applies_to_live_tokens(directory: StaffDirectory) -> None:
    tokens = SessionTokens(KEY, directory)
    token = tokens.issue(W1)
    staff = directory._load()
    staff["nurse-w1"]["wards"] = ["W2"]  # as an operator's edit of the file would
    directory._save(staff)
    assert tokens.verify(token).wards == ("W2",)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
    lambda t: "x" + t,  # payload
    lambda t: "",
    lambda t: "not.a.token",
])
def test_tampered_token_is_refused(directory: StaffDirectory, mangle) -> None:
    tokens = SessionTokens(KEY, directory)
    with pytest.raises(AuthenticationError, match="invalid"):
        tokens.verify(mangle(tokens.issue(W1)))


def test_other_key_is_refused(directory: StaffDirectory) -> None:
    token = SessionTokens(KEY, directory).issue(W1)
    with pytest.raises(AuthenticationError, match="invalid"):
        SessionTokens(b"r" * 32, directory).verify(token)


def test_token_holds_no_ward_or_name(directory: StaffDirectory) -> None:
    import base64
    token = SessionTokens(KEY, directory).issue(W1)
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b"W1" not in decoded.replace(b"nurse-w1", b"") and b"Nurse" not in decoded


def test_short_key_is_refused(directory: StaffDirectory) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SessionTokens(b"short", directory)
