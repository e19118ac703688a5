"""`gdcld-zoo models`."""

from gdcld_zoo import list_models
from gdcld_zoo.cli import main


def test_models_prints_name_size_and_description(capsys):
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "params", "description"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert sorted(rows) == list_models()
    assert "63.99M" in rows["segformer_b4"] and "MiT-B4" in rows["segformer_b4"]


def test_models_all_includes_tiny_variants(capsys):
    main(["models", "--all"])
    assert "segformer_tiny" in capsys.readouterr().out
