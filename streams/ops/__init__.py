"""Operations code: the native service stack (`vitalstream stack`).

Kept apart from the pipeline modules: nothing in the data path imports it.
"""
