"""How error messages name choices and client values (jobs/wording.py)."""

from jobs.wording import choices, sent


def test_choices_are_plain_words_in_the_order_given():
    assert choices(["demo", "sdxl"]) == "demo, sdxl"
    assert choices(("b", "a")) == "b, a"
    assert choices([]) == "(none)"


def test_a_sent_value_reads_as_the_json_the_client_sent():
    assert sent("pndm") == '"pndm"'
    assert sent({"a": [1, "x"]}) == '{"a": [1, "x"]}'
    assert sent("\ud800") == '"\\ud800"'


def test_what_json_cannot_show_is_named_by_its_type():
    assert sent(b"\x89PNG") == '"<bytes>"'
    looped: list = []
    looped.append(looped)
    assert sent(looped) == "<list>"
