"""The shipped answer keys of the five lectures: every correct worked example passes, and every
slip the catalogue records is found, with the diagnosis the catalogue's note gives (found by the
search; the note is never read by minicnn check)."""
import pytest

from minicnn import answers, examples

NOT_IN_KEYS = {  # catalogue examples no answer-key op covers (a quiz bound, three "what does this kernel do")
    "halmstad-quiz-sigmoid-relu", "halmstad-identity-kernel", "halmstad-shift-kernel", "halmstad-delete-kernel"}


@pytest.fixture(scope="module")
def results():
    out = {}
    for path in answers.lecture_keys():
        for q in answers.check_key(answers.load(path)).questions:
            out[q.id] = q
    return out


def by_example(results):
    found = {}
    for q in results.values():
        found.setdefault(q.extra["catalogue"], []).append(q)
    return found


def test_five_keys_one_per_lecture():
    names = sorted(p.rsplit("/", 1)[-1] for p in answers.lecture_keys())
    assert names == sorted(f"{k}.toml" for k in examples.lectures())


def test_every_catalogue_example_is_in_a_key(results):
    covered = set(by_example(results))
    assert covered == {ex.id for ex in examples.load()} - NOT_IN_KEYS


def test_correct_examples_pass_and_slips_fail(results):
    for ex_id, qs in by_example(results).items():
        ex = examples.get(ex_id)
        if ex.slide_printed is None:
            assert all(q.ok for q in qs), (ex_id, [(c.cell, c.printed, c.correct) for q in qs for c in q.wrong])
        else:
            assert not all(q.ok for q in qs), ex_id


def test_key_answers_are_the_catalogues_where_the_slide_is_right(results):
    for path in answers.lecture_keys():
        for q in answers.load(path).questions:
            ex = examples.get(q.extra["catalogue"])
            if ex.slide_printed is None and q.op in ("product", "output_size", "conv_params", "dense_params",
                                                     "l1_distance"):
                assert q.answer == ex.expected, q.id
            if ex.slide_printed is None and q.op in ("correlate", "max_pool") and ex.op != "conv2d":
                assert q.answer == [["?" if v is None else v for v in row] for row in ex.expected], q.id


def slips_of(q, cell):
    [c] = [c for c in q.wrong if c.cell == cell]
    return c


def test_zese_stride_2_window_moved_2_down_1_right(results):
    # catalogue: "The printed 0 is the stride-1 output at row 2, column 1, i.e. the window moved down by 2
    # but right by 1"
    q = results["ferrara-5x5-stride-2"]
    assert [c.cell for c in q.wrong] == ["out[1, 0]"]
    c = slips_of(q, "out[1, 0]")
    assert (c.printed, c.correct) == ("0", "-2")
    first = c.diagnoses[0]
    assert first.slip == "window-elsewhere" and "2 down and 1 right" in first.says
    assert "rows 2-4, columns 1-3" in first.says


def test_zese_224_arithmetic_has_no_structural_slip(results):
    # catalogue: "224*224 = 50,176 and 50,176*3 = 150,528" -- plain arithmetic; no slip reproduces 1,101,760
    c = slips_of(results["ferrara-rgb-224-inputs"], "answer")
    assert (c.printed, c.correct) == ("1,101,760", "150528") and c.diagnoses == []


def test_zese_dense_weights_follow_from_the_wrong_input_count(results):
    # catalogue: "Slide error, following from the one above"
    c = slips_of(results["ferrara-rgb-224-dense-weights"], "answer")
    assert [d.slip for d in c.diagnoses] == ["carried"]
    assert "ferrara-rgb-224-inputs" in c.diagnoses[0].says


def test_ding_56k_is_65k_with_two_digits_swapped(results):
    # catalogue: "a 256x256 image has 65,536 pixels (over 65k), where the slide says '<56k total'"
    c = slips_of(results["sjtu-256x256-pixels"], "answer")
    assert [d.slip for d in c.diagnoses] == ["digits-transposed"]
    assert "65k" in c.diagnoses[0].says and "56k" in c.diagnoses[0].says


def test_pitie_caption_stride_3_is_stride_4(results):
    # catalogue: "the caption ... says 'a stride of 3'; it is stride 4, keeping one in 16 pixels"
    c = slips_of(results["tcd-16x16-stride-4"], "answer")
    says = [d.says for d in c.diagnoses if d.slip == "input-misprinted"]
    assert says == ["4 is right for stride = 4 (the question has stride = 3)"]
    # the other slip that also gives 4 x 4 (forgetting the + 1) is reported beside it, honestly
    assert {d.slip for d in c.diagnoses} == {"input-misprinted", "size-missing-plus-one"}


def test_romano_summary_table(results):
    q = results["zju-uoe-two-class-cnn"]
    assert sorted(c.cell for c in q.wrong) == ["layers[1].stride", "layers[3].stride", "rows[1].params",
                                               "rows[7].params", "total"]
    # (1) 150 beside (5 x 5 + 1) * 6 = 156: the 150 is the weights alone
    assert [d.slip for d in slips_of(q, "rows[1].params").diagnoses] == ["table-biases-left-out"]
    # (3) the output layer's 50 weights without its bias
    assert [d.slip for d in slips_of(q, "rows[7].params").diagnoses] == ["table-biases-left-out"]
    # (4) the printed total adds the two wrong counts
    total = slips_of(q, "total")
    assert [d.slip for d in total.diagnoses] == ["carried"] and "rows[1].params, rows[7].params" in \
        total.diagnoses[0].says
    # (2) s=0 for pooling that halves 28 to 14 and 10 to 5: stride 2
    for cell in ("layers[1].stride", "layers[3].stride"):
        c = slips_of(q, cell)
        assert (c.printed, c.correct) == ("0", "2")
        assert [d.slip for d in c.diagnoses] == ["input-misprinted"] and "needs stride 2" in c.diagnoses[0].says


def test_romano_formula_counts_one_bias_per_layer(results):
    # README: Romanò, "Convolutional layer": "num filters x filter size + 1 (bias)" -> one bias per filter
    c = slips_of(results["zju-uoe-conv-layer-formula"], "formula")
    assert (c.printed, c.correct) == ("filters * filter_size + 1", "filters * (filter_size + 1)")
    assert [d.slip for d in c.diagnoses] == ["formula-one-bias-per-layer"]
