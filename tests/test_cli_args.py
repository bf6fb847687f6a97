"""Out-of-range and non-finite option values are usage errors (exit 2, one line naming the option) before
any work starts: no traceback from deep inside a library, no NaN carried into results, no port wrapped
modulo 65536."""

from __future__ import annotations

import pytest

from conftest import SAMPLE_IMAGE
from tfface.cli.main import main

IMG = str(SAMPLE_IMAGE)


@pytest.mark.parametrize("argv, message", [
    (["reconstruct", IMG, "--json", "--min-score", "5"], "argument --min-score: must be a finite number >= 0 and <= 1, got '5'"),
    (["reconstruct", IMG, "--json", "--min-score", "nan"], "argument --min-score: must be a finite number >= 0 and <= 1, got 'nan'"),
    (["reconstruct", IMG, "--json", "--refine", "-3"], "argument --refine: must be an integer >= 0 and <= 10, got '-3'"),
    (["reconstruct", IMG, "--json", "--max-megapixels", "nan"], "argument --max-megapixels: must be a finite number > 0, got 'nan'"),
    (["reconstruct", IMG, "--json", "--max-megapixels", "-1"], "argument --max-megapixels: must be a finite number > 0, got '-1'"),
    (["reconstruct", IMG, "--json", "--detect-every", "0"], "argument --detect-every: must be an integer >= 1, got '0'"),
    (["verify", IMG, IMG, "--threshold", "nan"], "argument --threshold: must be a finite number >= -1 and <= 1, got 'nan'"),
    (["edit", IMG, "--attribute", "Smiling", "--amount", "1e30", "-o", "x"],
     "argument --amount: must be a finite number >= -20 and <= 20, got '1e30'"),
    (["export", "-o", "x", "--version", "-3"], "argument --version: must be an integer >= 1, got '-3'"),
    (["export", "-o", "x", "--max-faces", "-1"], "argument --max-faces: must be an integer >= 1, got '-1'"),
    (["serve-request", IMG, "--timeout", "-5"], "argument --timeout: must be a finite number > 0, got '-5'"),
    (["service", "dispatcher", "--port", "70000"], "argument --port: must be an integer >= 0 and <= 65535, got '70000'"),
    (["evaluate", "verification", "--data", "x", "--num-pairs", "0"], "argument --num-pairs: must be an integer >= 2, got '0'"),
    (["evaluate", "meshes", "--pred", "x", "--gt", "y", "--radius", "nan"],
     "argument --radius: must be a finite number > 0, got 'nan'"),
    (["service", "worker", "--dispatcher", "nohost:abc"],
     "argument --dispatcher: must be HOST:PORT with a port in 1-65535, got 'nohost:abc'"),
])
def test_bad_option_values_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"error: {message}")


@pytest.mark.parametrize("argv, env, message", [
    (["reconstruct", IMG, "--json"], {"TFFACE_MAX_PIXELS": "abc"},
     "TFFACE_MAX_PIXELS must be a positive number of pixels. Received: 'abc'"),
    (["reconstruct", IMG, "--json"], {"TFFACE_MAX_PIXELS": "-5"},
     "TFFACE_MAX_PIXELS must be a positive number of pixels. Received: '-5'"),
    (["reconstruct", IMG, "--json", "--mesh"], {}, "--mesh writes files: give an output folder (-o OUTDIR)"),
])
def test_bad_settings_are_one_error_not_one_per_image(argv, env, message, capsys, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"tfface: error: {message}\n"
