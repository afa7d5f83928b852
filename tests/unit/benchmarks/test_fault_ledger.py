"""The fault harness's page books: what counts as a duplicate page."""

from collections import Counter

from benchmarks.faults.ledger import IDEMPOTENCY_KEY, check_pages

EXPECTED = Counter({("W1", "B1", "spo2_low"): 1})


def page(ref: str, key: str | None) -> tuple[int, dict]:
    return (0, {"page_ref": ref, "kind": "raised", "ward": "W1", "bed": "B1",
                "rule": "spo2_low", IDEMPOTENCY_KEY: key})


def test_a_second_copy_under_the_same_key_is_a_redelivery_not_a_duplicate() -> None:
    check = check_pages(EXPECTED, {"webhook": [page("r/raised", "r/raised:ward"),
                                               page("r/raised", "r/raised:ward")]})
    assert check.duplicates == {"webhook": 0}
    assert check.redelivered == {"webhook": 1}
    assert check.missing == {"webhook": 0}


def test_a_third_copy_or_another_key_or_no_key_is_a_duplicate() -> None:
    three = [page("r/raised", "k")] * 3
    other_key = [page("r/raised", "k"), page("r/raised", "k2")]
    no_key = [page("r/raised", None), page("r/raised", None)]
    for received in (three, other_key, no_key):
        check = check_pages(EXPECTED, {"mqtt": received})
        assert check.duplicates == {"mqtt": 1}, received
        assert check.redelivered == {"mqtt": 0}


def test_a_page_never_received_is_missing() -> None:
    check = check_pages(EXPECTED, {"webhook": []})
    assert check.missing == {"webhook": 1}
