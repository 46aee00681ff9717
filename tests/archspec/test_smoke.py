def test_validate_shipped_spec_by_name(cli):
    r = cli("validate", "resnet50")
    assert r.code == 0, r.err
    assert "ok (resnet50" in r.out
