"""`minicnn check` from the command line, its outputs, and clear errors for bad keys."""
import json

import pytest

from minicnn import answers, cli

GOOD = """
title = "quiz 1"

[[question]]
id = "size"
op = "output_size"
n = 32
kernel_size = 5
padding = 2
answer = 32
"""

BAD = GOOD + """
[[question]]
id = "conv1"
op = "conv_params"
in_channels = 1
filters = 6
kernel_size = 5
answer = 150

[[question]]
id = "mystery"
op = "product"
factors = [224, 224, 3]
answer = "1,101,760"
"""


def write(tmp_path, text, name="key.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_right_key_exits_0(tmp_path, capsys):
    assert cli.main(["check", write(tmp_path, GOOD)]) == 0
    out = capsys.readouterr().out
    assert "ok     size" in out and "1 right, 0 wrong" in out


def test_a_wrong_key_exits_1_and_says_which_cell_and_slip(tmp_path, capsys):
    assert cli.main(["check", write(tmp_path, BAD)]) == 1
    out = capsys.readouterr().out
    assert "WRONG  conv1" in out
    assert "answer: printed 150, correct 156" in out
    assert "6 x (1 x 5 x 5 + 1) = 156" in out
    assert "slip: biases left out" in out
    assert "slip: no known slip reproduces this value" in out  # the 1,101,760


def test_latex_working(tmp_path, capsys):
    cli.main(["check", "--latex", write(tmp_path, BAD)])
    assert r"$$6 \times (1 \times 5 \times 5 + 1) = 156$$" in capsys.readouterr().out


def test_json(tmp_path, capsys):
    assert cli.main(["check", "--json", write(tmp_path, BAD)]) == 1
    data = json.loads(capsys.readouterr().out)
    [k] = data["keys"]
    assert k["title"] == "quiz 1" and not k["ok"]
    q = {q["id"]: q for q in k["questions"]}
    assert q["size"]["ok"] and not q["conv1"]["ok"]
    [cell] = q["conv1"]["cells"]
    assert (cell["printed"], cell["correct"], cell["ok"]) == ("150", "156", False)
    assert cell["diagnoses"][0]["slip"] == "biases-left-out"
    assert q["mystery"]["cells"][0]["diagnoses"] == []


@pytest.mark.parametrize("suffix", ["md", "html"])
def test_reports(tmp_path, capsys, suffix):
    report = tmp_path / f"report.{suffix}"
    assert cli.main(["check", write(tmp_path, BAD), "--report", str(report)]) == 1
    page = report.read_text(encoding="utf-8")
    assert "conv1" in page and "156" in page and "biases left out" in page
    assert "no known slip reproduces this value" in page
    if suffix == "html":
        assert page.startswith("<!DOCTYPE html>") and "<h3>conv1: answer</h3>" in page
    else:
        assert "### conv1: answer" in page and "| size |" in page


def test_report_needs_md_or_html(tmp_path, capsys):
    assert cli.main(["check", write(tmp_path, GOOD), "--report", str(tmp_path / "r.txt")]) == 2
    assert "name a .md or .html file" in capsys.readouterr().err


def test_one_question_from_the_command_line(capsys):
    code = cli.main(["check", "--op", "correlate", "--field", "image=1,2,0;1,0,0;2,1,2", "--field",
                     "kernel=[[1, 0], [0, 1]]", "--answer", "1,2;3,?"])
    out = capsys.readouterr().out
    assert code == 1 and "out[1, 0]: printed 3, correct 2" in out
    assert cli.main(["check", "--op", "output_size", "--field", "n=16", "--field", "kernel_size=3",
                     "--field", "stride=4", "--answer", "4"]) == 0


def test_op_and_a_key_file_together_is_an_error(tmp_path, capsys):
    assert cli.main(["check", write(tmp_path, GOOD), "--op", "product", "--answer", "6"]) == 2
    assert "either answer key files" in capsys.readouterr().err


def test_lectures_flag_checks_the_shipped_keys(capsys):
    assert cli.main(["check", "--lectures", "--json"]) == 1  # the slides' slips
    data = json.loads(capsys.readouterr().out)
    assert len(data["keys"]) == 5


MALFORMED = [
    ("[[question]\nid = 1", "not valid TOML"),
    ("title = 'x'", "no [[question]] tables"),
    ("[[question]]\nid = 'a'\nanswer = 1", "question 'a', field 'op': missing"),
    ("[[question]]\nid = 'a'\nop = 'convolution3d'\nanswer = 1",
     "question 'a', field 'op': unknown op 'convolution3d'"),
    ("[[question]]\nid = 'a'\nop = 'output_size'\nn = 5\nkernel_size = 3", "question 'a', field 'answer': missing"),
    ("[[question]]\nid = 'a'\nop = 'output_size'\nn = 5\nanswer = 3", "question 'a', field 'kernel_size': missing"),
    ("[[question]]\nid = 'a'\nop = 'output_size'\nn = 5\nkernel_size = 3\nstrid = 2\nanswer = 3",
     "question 'a', field 'strid': op 'output_size' has no such field"),
    ("[[question]]\nid = 'a'\nop = 'output_size'\nn = 5\nkernel_size = 3\nstride = 0\nanswer = 3",
     "question 'a', field 'stride': must be an int >= 1"),
    ("[[question]]\nid = 'a'\nop = 'output_size'\nn = 5\nkernel_size = 9\nanswer = 3",
     "question 'a', field 'kernel_size': a 9-wide window does not fit"),
    ("[[question]]\nid = 'a'\nop = 'conv_params'\nin_channels = 1\nfilters = 6\nkernel_size = 5\nanswer = 'lots'",
     "question 'a', field 'answer': cannot read 'lots'"),
    ("[[question]]\nid = 'a'\nop = 'correlate'\nimage = [[1, 2], [3]]\nkernel = [[1]]\nanswer = [[1]]",
     "question 'a', field 'image': must be a matrix"),
    ("[[question]]\nid = 'a'\nop = 'correlate'\nimage = [[[1, 2], [3, 4]], [[1, 2], [3, 4]]]\n"
     "kernel = [[1, 0], [0, 1]]\nanswer = [[1]]", "question 'a', field 'kernel': 1 channel(s), the image has 2"),
    ("[[question]]\nid = 'a'\nop = 'correlate'\nimage = [[1, 2], [3, 4]]\nkernel = [[1, 0, 1], [0, 1, 0], [1, 1, 1]]\n"
     "answer = [[1]]", "question 'a', field 'kernel': the kernel (3 rows) is larger than the padded image"),
    ("[[question]]\nid = 'a'\nop = 'correlate'\nimage = [[1, 2], [3, 4]]\nkernel = [[1]]\nanswer = 5",
     "question 'a', field 'answer': must be a 2-D matrix"),
    ("[[question]]\nid = 'a'\nop = 'product'\nfactors = [2, 3]\nanswer = 6\n[[question]]\nid = 'a'\nop = 'product'\n"
     "factors = [2]\nanswer = 2", "question 'a', field 'id': used twice"),
    ("[[question]]\nid = 'a'\nop = 'product'\nfactors = ['@b']\nanswer = 6",
     "question 'a', field 'factors': '@b' names no"),
    ("[[question]]\nid = 'd'\nop = 'l1_distance'\na = [[1, 2]]\nb = [[1], [2]]\nanswer = 0",
     "question 'd', field 'b': shape (2, 1) differs from a's (1, 2)"),
    ("[[question]]\nid = 'net'\nop = 'network'\ninput = [32, 32, 3]\nlayers = [{type = 'lstm', units = 4}]\n"
     "answer.total = 1", "question 'net', field 'layers[0]'.type: must be one of conv"),
    ("[[question]]\nid = 'net'\nop = 'network'\ninput = [4, 4, 3]\nlayers = [{type = 'conv', filters = 2, "
     "kernel_size = 7}]\nanswer.total = 1", "question 'net', field 'layers[0]'"),
    ("[[question]]\nid = 'net'\nop = 'network'\ninput = [8, 8, 3]\nlayers = [{type = 'dense', units = 4}, "
     "{type = 'max_pool', kernel_size = 2}]\nanswer.total = 1", "question 'net', field 'layers[1]'"),
]


@pytest.mark.parametrize("text,message", MALFORMED)
def test_malformed_keys_name_the_question_and_field(tmp_path, capsys, text, message):
    with pytest.raises(answers.KeyFileError) as err:
        answers.loads(text) if "[[question]" not in text or "=" not in text else \
            answers.check_key(answers.loads(text))
    assert message in str(err.value)
    assert cli.main(["check", write(tmp_path, text)]) == 2  # the command prints it, no traceback
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err


def test_missing_file(tmp_path, capsys):
    assert cli.main(["check", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read the answer key" in capsys.readouterr().err
