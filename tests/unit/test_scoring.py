"""Tests for api.assessments.scoring.

The oracle below is written from PRODUCT.md's table, independently of the implementation:
bands as explicit (lowest, highest, name) rows, PCL-5 clusters as lists of item numbers.
"""

import dataclasses
from collections.abc import Sequence
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.assessments.scoring import (
    DISPLAY_NAME,
    ITEM_COUNT,
    ITEM_MAX,
    Instrument,
    InvalidAnswers,
    Score,
    in_remission,
    meets_response,
    score,
)

PHQ9 = Instrument.PHQ9
GAD7 = Instrument.GAD7
PCL5 = Instrument.PCL5

# ---------------------------------------------------------------------------------------------
# Oracle, straight from PRODUCT.md "Instruments and scoring"
# ---------------------------------------------------------------------------------------------

SHAPE = {  # instrument: (number of items, highest answer, highest total)
    PHQ9: (9, 3, 27),
    GAD7: (7, 3, 21),
    PCL5: (20, 4, 80),
}

BAND_TABLE = {
    PHQ9: [
        (0, 4, "minimal"),
        (5, 9, "mild"),
        (10, 14, "moderate"),
        (15, 19, "moderately_severe"),
        (20, 27, "severe"),
    ],
    GAD7: [
        (0, 4, "minimal"),
        (5, 9, "mild"),
        (10, 14, "moderate"),
        (15, 21, "severe"),
    ],
    PCL5: [
        (0, 32, "below_threshold"),
        (33, 80, "provisional_positive"),
    ],
}

CLUSTER_ITEMS = {
    "B": [1, 2, 3, 4, 5],
    "C": [6, 7],
    "D": [8, 9, 10, 11, 12, 13, 14],
    "E": [15, 16, 17, 18, 19, 20],
}
CLUSTER_NEEDS = {"B": 1, "C": 1, "D": 2, "E": 2}


def oracle_band(instrument: Instrument, total: int) -> str:
    matches = [name for low, high, name in BAND_TABLE[instrument] if low <= total <= high]
    assert len(matches) == 1, (instrument, total, matches)
    return matches[0]


def oracle_score(instrument: Instrument, answers: Sequence[int]) -> Score:
    total = 0
    for answer in answers:
        total += answer
    band = oracle_band(instrument, total)
    if instrument != PCL5:
        flag = instrument == PHQ9 and answers[8] != 0
        return Score(instrument, total, band, flag, None, None, None)
    item = dict(zip(range(1, 21), answers, strict=True))
    clusters = {
        name: len([n for n in numbers if item[n] in (2, 3, 4)])
        for name, numbers in CLUSTER_ITEMS.items()
    }
    diagnosis = all(clusters[name] >= need for name, need in CLUSTER_NEEDS.items())
    return Score(PCL5, total, band, False, clusters, total > 32, diagnosis)


def answers_for_total(instrument: Instrument, total: int) -> list[int]:
    """Answers that add up to `total`, filling items from the first one."""
    count, highest, _ = SHAPE[instrument]
    answers = []
    remaining = total
    for _ in range(count):
        answer = min(highest, remaining)
        answers.append(answer)
        remaining -= answer
    assert remaining == 0
    return answers


def pcl5_answers(endorsed: Sequence[int], value: int = 2) -> list[int]:
    """PCL-5 answers with the given 1-based items set to `value` and the rest 0."""
    return [value if number in endorsed else 0 for number in range(1, 21)]


# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------


def test_instrument_values_are_the_wire_names() -> None:
    assert [i.value for i in Instrument] == ["phq9", "gad7", "pcl5"]
    assert Instrument("gad7") is GAD7


def test_constants_match_product_table() -> None:
    assert {i: shape[0] for i, shape in SHAPE.items()} == ITEM_COUNT
    assert {i: shape[1] for i, shape in SHAPE.items()} == ITEM_MAX
    assert DISPLAY_NAME == {PHQ9: "PHQ-9", GAD7: "GAD-7", PCL5: "PCL-5"}


@pytest.mark.parametrize("instrument", list(Instrument))
def test_oracle_band_table_covers_every_total_once(instrument: Instrument) -> None:
    # Guards the oracle itself: a gap or overlap would make the band tests meaningless.
    covered = [t for low, high, _ in BAND_TABLE[instrument] for t in range(low, high + 1)]
    assert covered == list(range(SHAPE[instrument][2] + 1))


# ---------------------------------------------------------------------------------------------
# Bands: every total of every instrument
# ---------------------------------------------------------------------------------------------

EVERY_TOTAL = [(i, total) for i in Instrument for total in range(SHAPE[i][2] + 1)]


@pytest.mark.parametrize(("instrument", "total"), EVERY_TOTAL)
def test_every_total_gets_its_band(instrument: Instrument, total: int) -> None:
    result = score(instrument, answers_for_total(instrument, total))
    assert result.instrument is instrument
    assert result.total == total
    assert result.band == oracle_band(instrument, total)


@pytest.mark.parametrize(
    ("instrument", "total", "band"),
    [
        (PHQ9, 4, "minimal"),
        (PHQ9, 5, "mild"),
        (PHQ9, 9, "mild"),
        (PHQ9, 10, "moderate"),
        (PHQ9, 14, "moderate"),
        (PHQ9, 15, "moderately_severe"),
        (PHQ9, 19, "moderately_severe"),
        (PHQ9, 20, "severe"),
        (PHQ9, 27, "severe"),
        (GAD7, 0, "minimal"),
        (GAD7, 4, "minimal"),
        (GAD7, 5, "mild"),
        (GAD7, 14, "moderate"),
        (GAD7, 15, "severe"),
        (GAD7, 21, "severe"),
        (PCL5, 32, "below_threshold"),
        (PCL5, 33, "provisional_positive"),
    ],
)
def test_band_edges_by_hand(instrument: Instrument, total: int, band: str) -> None:
    assert score(instrument, answers_for_total(instrument, total)).band == band


@pytest.mark.parametrize(("total", "positive"), [(0, False), (32, False), (33, True), (80, True)])
def test_pcl5_provisional_positive_threshold(total: int, positive: bool) -> None:
    assert score(PCL5, answers_for_total(PCL5, total)).provisional_positive is positive


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

WRONG_COUNTS = [
    (i, n, f"{DISPLAY_NAME[i]} needs {SHAPE[i][0]} answers, got {n}")
    for i in Instrument
    for n in (0, SHAPE[i][0] - 1, SHAPE[i][0] + 1)
]


@pytest.mark.parametrize(("instrument", "count", "message"), WRONG_COUNTS)
def test_wrong_number_of_answers(instrument: Instrument, count: int, message: str) -> None:
    with pytest.raises(InvalidAnswers) as caught:
        score(instrument, [0] * count)
    assert str(caught.value) == message
    assert caught.value.message == message


def test_wrong_count_message_example_from_brief() -> None:
    with pytest.raises(InvalidAnswers, match=r"^PHQ-9 needs 9 answers, got 8$"):
        score(PHQ9, [0] * 8)


def test_count_is_checked_before_values() -> None:
    with pytest.raises(InvalidAnswers, match="needs 7 answers, got 8"):
        score(GAD7, [9] * 8)


OUT_OF_RANGE = [
    (i, bad, position)
    for i in Instrument
    for bad in (-1, SHAPE[i][1] + 1)
    for position in (1, SHAPE[i][0] // 2, SHAPE[i][0])
]


@pytest.mark.parametrize(("instrument", "bad", "position"), OUT_OF_RANGE)
def test_out_of_range_answer(instrument: Instrument, bad: int, position: int) -> None:
    answers: list[int] = [0] * SHAPE[instrument][0]
    answers[position - 1] = bad
    expected = f"answer {position} must be an integer from 0 to {SHAPE[instrument][1]}"
    with pytest.raises(InvalidAnswers) as caught:
        score(instrument, answers)
    assert str(caught.value) == expected


def test_out_of_range_message_example_from_brief() -> None:
    with pytest.raises(InvalidAnswers, match=r"^answer 3 must be an integer from 0 to 3$"):
        score(PHQ9, [0, 0, 4, 0, 0, 0, 0, 0, 0])


def test_first_bad_answer_is_reported() -> None:
    with pytest.raises(InvalidAnswers, match=r"^answer 2 must"):
        score(GAD7, [0, 5, -1, 0, 0, 0, 0])


@pytest.mark.parametrize("instrument", list(Instrument))
@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_rejected(instrument: Instrument, value: bool) -> None:
    answers: list[object] = [0] * SHAPE[instrument][0]
    answers[-1] = value
    with pytest.raises(InvalidAnswers, match=rf"^answer {SHAPE[instrument][0]} must"):
        score(instrument, answers)  # type: ignore[arg-type]


@pytest.mark.parametrize("instrument", list(Instrument))
@pytest.mark.parametrize("value", [1.0, 2.5, "1", None, b"1", [1]])
def test_non_integers_are_rejected(instrument: Instrument, value: object) -> None:
    answers: list[object] = [0] * SHAPE[instrument][0]
    answers[0] = value
    with pytest.raises(InvalidAnswers, match=r"^answer 1 must be an integer"):
        score(instrument, answers)  # type: ignore[arg-type]


def test_invalid_answers_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="PCL-5 needs 20 answers, got 0"):
        score(PCL5, [])


def test_any_sequence_is_accepted() -> None:
    assert score(GAD7, (1, 1, 1, 1, 1, 1, 1)).total == 7
    assert score(PHQ9, (0, 0, 0, 0, 0, 0, 0, 0, 2)).safety_flag is True


def test_score_is_frozen() -> None:
    result = score(GAD7, [0] * 7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.total = 3  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# PHQ-9 item 9 safety flag
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, 2, 3])
def test_phq9_item9_alone_raises_flag(value: int) -> None:
    result = score(PHQ9, [0] * 8 + [value])
    assert result.safety_flag is True
    assert result.total == value


def test_phq9_item9_zero_no_flag_even_when_everything_else_is_maximal() -> None:
    result = score(PHQ9, [3] * 8 + [0])
    assert result.safety_flag is False
    assert result.total == 24
    assert result.band == "severe"


@pytest.mark.parametrize("item", range(1, 9))
def test_phq9_other_items_never_flag(item: int) -> None:
    answers = [0] * 9
    answers[item - 1] = 3
    assert score(PHQ9, answers).safety_flag is False


@pytest.mark.parametrize("instrument", [GAD7, PCL5])
def test_other_instruments_never_flag(instrument: Instrument) -> None:
    count, highest, _ = SHAPE[instrument]
    assert score(instrument, [highest] * count).safety_flag is False


@pytest.mark.parametrize("instrument", [PHQ9, GAD7])
def test_pcl5_fields_are_none_for_other_instruments(instrument: Instrument) -> None:
    result = score(instrument, [3] * SHAPE[instrument][0])
    assert result.clusters is None
    assert result.provisional_positive is None
    assert result.provisional_diagnosis is None


# ---------------------------------------------------------------------------------------------
# PCL-5 clusters, worked by hand
# ---------------------------------------------------------------------------------------------

# The smallest endorsement that meets every cluster: B item 1, C item 6, D items 8-9, E 15-16.
MINIMAL_DIAGNOSIS = [1, 6, 8, 9, 15, 16]


def test_pcl5_all_zero() -> None:
    result = score(PCL5, [0] * 20)
    assert result.clusters == {"B": 0, "C": 0, "D": 0, "E": 0}
    assert result.provisional_diagnosis is False
    assert result.provisional_positive is False
    assert result.band == "below_threshold"


def test_pcl5_exactly_at_every_cluster_threshold() -> None:
    result = score(PCL5, pcl5_answers(MINIMAL_DIAGNOSIS))
    assert result.clusters == {"B": 1, "C": 1, "D": 2, "E": 2}
    assert result.provisional_diagnosis is True
    # Diagnosis and the total cut-off are separate rules: 12 is far below 33.
    assert result.total == 12
    assert result.provisional_positive is False
    assert result.band == "below_threshold"


@pytest.mark.parametrize(
    ("dropped", "clusters"),
    [
        (1, {"B": 0, "C": 1, "D": 2, "E": 2}),
        (6, {"B": 1, "C": 0, "D": 2, "E": 2}),
        (9, {"B": 1, "C": 1, "D": 1, "E": 2}),
        (16, {"B": 1, "C": 1, "D": 2, "E": 1}),
    ],
)
def test_pcl5_one_below_a_cluster_threshold(dropped: int, clusters: dict[str, int]) -> None:
    endorsed = [n for n in MINIMAL_DIAGNOSIS if n != dropped]
    result = score(PCL5, pcl5_answers(endorsed))
    assert result.clusters == clusters
    assert result.provisional_diagnosis is False


@pytest.mark.parametrize(
    ("dropped", "clusters"),
    [
        (1, {"B": 0, "C": 1, "D": 2, "E": 2}),
        (6, {"B": 1, "C": 0, "D": 2, "E": 2}),
        (9, {"B": 1, "C": 1, "D": 1, "E": 2}),
        (16, {"B": 1, "C": 1, "D": 2, "E": 1}),
    ],
)
def test_pcl5_answer_of_one_is_not_endorsed(dropped: int, clusters: dict[str, int]) -> None:
    answers = pcl5_answers(MINIMAL_DIAGNOSIS)
    answers[dropped - 1] = 1
    result = score(PCL5, answers)
    assert result.clusters == clusters
    assert result.provisional_diagnosis is False
    assert result.total == 11


@pytest.mark.parametrize("value", [2, 3, 4])
def test_pcl5_answers_two_and_above_are_endorsed(value: int) -> None:
    result = score(PCL5, pcl5_answers(MINIMAL_DIAGNOSIS, value))
    assert result.clusters == {"B": 1, "C": 1, "D": 2, "E": 2}
    assert result.provisional_diagnosis is True


@pytest.mark.parametrize(
    ("item", "cluster"),
    [(1, "B"), (5, "B"), (6, "C"), (7, "C"), (8, "D"), (14, "D"), (15, "E"), (20, "E")],
)
def test_pcl5_cluster_edges(item: int, cluster: str) -> None:
    result = score(PCL5, pcl5_answers([item], 4))
    expected = {"B": 0, "C": 0, "D": 0, "E": 0} | {cluster: 1}
    assert result.clusters == expected


def test_pcl5_all_items_endorsed() -> None:
    result = score(PCL5, [4] * 20)
    assert result.clusters == {"B": 5, "C": 2, "D": 7, "E": 6}
    assert result.provisional_diagnosis is True
    assert result.provisional_positive is True
    assert result.band == "provisional_positive"


def test_pcl5_positive_total_without_diagnosis() -> None:
    # Every B and D item at 4 but no C item: 20 + 28 = 48, positive, yet no diagnosis.
    result = score(PCL5, pcl5_answers([1, 2, 3, 4, 5, *range(8, 15)], 4))
    assert result.total == 48
    assert result.provisional_positive is True
    assert result.clusters == {"B": 5, "C": 0, "D": 7, "E": 0}
    assert result.provisional_diagnosis is False


# ---------------------------------------------------------------------------------------------
# Properties against the oracle
# ---------------------------------------------------------------------------------------------


@st.composite
def valid_answers(draw: st.DrawFn) -> tuple[Instrument, list[int]]:
    instrument = draw(st.sampled_from(list(Instrument)))
    count, highest, _ = SHAPE[instrument]
    answers = draw(st.lists(st.integers(0, highest), min_size=count, max_size=count))
    return instrument, answers


@settings(max_examples=200)
@given(valid_answers())
def test_score_matches_oracle(case: tuple[Instrument, list[int]]) -> None:
    instrument, answers = case
    assert score(instrument, answers) == oracle_score(instrument, answers)


@settings(max_examples=200)
@given(st.sampled_from(list(Instrument)), st.data())
def test_any_wrong_length_is_rejected(instrument: Instrument, data: st.DataObject) -> None:
    count, highest, _ = SHAPE[instrument]
    answers = data.draw(
        st.lists(st.integers(0, highest), max_size=30).filter(lambda a: len(a) != count)
    )
    with pytest.raises(InvalidAnswers, match=f"needs {count} answers, got {len(answers)}$"):
        score(instrument, answers)


@settings(max_examples=200)
@given(valid_answers(), st.data())
def test_any_out_of_range_answer_is_rejected(
    case: tuple[Instrument, list[int]], data: st.DataObject
) -> None:
    instrument, answers = case
    count, highest, _ = SHAPE[instrument]
    position = data.draw(st.integers(1, count))
    answers[position - 1] = data.draw(
        st.one_of(st.integers(max_value=-1), st.integers(min_value=highest + 1))
    )
    first_bad = next(n for n, a in enumerate(answers, 1) if not 0 <= a <= highest)
    with pytest.raises(InvalidAnswers, match=f"^answer {first_bad} must .* from 0 to {highest}$"):
        score(instrument, answers)


# ---------------------------------------------------------------------------------------------
# Response and remission
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("baseline", "latest", "expected"),
    [
        (0, 0, False),  # nothing to drop from
        (0, 5, False),
        (100, 50, True),  # exactly 50%
        (100, 51, False),  # 49%
        (100, 49, True),  # 51%
        (20, 10, True),
        (20, 11, False),
        (9, 4, True),  # 55.6%
        (9, 5, False),  # 44.4%
        (1, 0, True),
        (10, 0, True),
        (10, 10, False),
        (10, 14, False),  # worse
    ],
)
def test_meets_response(baseline: int, latest: int, expected: bool) -> None:
    assert meets_response(baseline, latest) is expected


@settings(max_examples=200)
@given(st.integers(0, 80), st.integers(0, 80))
def test_meets_response_matches_fraction_oracle(baseline: int, latest: int) -> None:
    expected = baseline > 0 and Fraction(baseline - latest, baseline) >= Fraction(1, 2)
    assert meets_response(baseline, latest) is expected


@pytest.mark.parametrize(
    ("instrument", "total", "expected"),
    [
        (PHQ9, 0, True),
        (PHQ9, 4, True),
        (PHQ9, 5, False),
        (PHQ9, 27, False),
        (GAD7, 0, True),
        (GAD7, 4, True),
        (GAD7, 5, False),
        (GAD7, 21, False),
        (PCL5, 0, None),
        (PCL5, 4, None),
        (PCL5, 80, None),
    ],
)
def test_in_remission(instrument: Instrument, total: int, expected: bool | None) -> None:
    assert in_remission(instrument, total) is expected
