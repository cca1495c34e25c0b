"""Protocols: presets, hashing, aliases, exclusions, validation of protocol files."""

from __future__ import annotations

import pytest

from posebench.protocols import Protocol, ProtocolError, get_protocol, preset_names, read_protocol, write_protocol


def test_presets_exist_and_load():
    assert preset_names() == ["h36m", "h36m-mmhuman-paper", "humaneva", "mmhuman", "sample", "sample-mmhuman"]
    for name in preset_names():
        assert get_protocol(name).name == name


def test_aliases_exist_only_where_a_preset_defines_them():
    vp3d = get_protocol("h36m")
    assert [vp3d.metric_name(a) for a in ("P1", "P2", "P3")] == ["mpjpe", "p_mpjpe", "n_mpjpe"]
    paper = get_protocol("h36m-mmhuman-paper")
    assert paper.metric_name("Protocol 1") == "p_mpjpe"
    assert paper.metric_name("Protocol 2") == "n_mpjpe_abs"
    with pytest.raises(ProtocolError, match="protocol 'h36m-mmhuman-paper' has no metric or alias 'P2'"):
        paper.metric_name("P2")
    with pytest.raises(ProtocolError, match="protocol 'humaneva' has no metric or alias 'P1'"):
        get_protocol("humaneva").metric_name("P1")


def test_hash_depends_on_content_not_on_formatting(tmp_path):
    original = get_protocol("h36m")
    path = tmp_path / "copy.toml"
    write_protocol(original, path)
    assert read_protocol(path).hash == original.hash
    path.write_text(path.read_text().replace("frame_stride = 1", "frame_stride = 5"))
    assert read_protocol(path).hash != original.hash
    assert len({get_protocol(n).hash for n in preset_names()}) == len(preset_names())


def test_occlusion_ratios_are_not_part_of_the_identity():
    from dataclasses import replace

    protocol = get_protocol("sample")
    fewer = replace(protocol, occlusion=replace(protocol.occlusion, ratios=(0.5,)))
    other_kernel = replace(protocol, occlusion=replace(protocol.occlusion, kernel=27))
    assert fewer.hash == protocol.hash
    assert other_kernel.hash != protocol.hash


def test_exclusions_and_action_grouping():
    protocol = get_protocol("h36m")
    assert protocol.excludes("S11/Directions/54138969")
    assert not protocol.excludes("S11/Directions 1/54138969")
    assert not protocol.excludes("S9/Directions/54138969")
    assert protocol.action_group("Walking 1") == "Walking"
    assert get_protocol("mmhuman").action_group("Walking 1") == "Walking 1"


def test_defaults_follow_videopose3d():
    protocol = Protocol(name="x")
    assert protocol.root_joint == "pelvis" and protocol.flip_test and protocol.joints == ()
    assert protocol.averaging == ("action_mean", "frame_mean")


@pytest.mark.parametrize(
    "content, message",
    [
        ('description = "x"\n', "missing required key 'name'"),
        ('name = "x"\nframe_skip = 2\n', "unknown keys \\['frame_skip'\\]"),
        ('name = "x"\nmetrics = ["mpjpe", "protocol2"]\n', "metrics: 'protocol2' is not one of"),
        ('name = "x"\n[aliases]\nP9 = "nonsense"\n', "aliases.P9: 'nonsense' is not one of"),
        ('name = "x"\nframe_stride = 0\n', "frame_stride must be a positive integer"),
        ('name = "x"\n[occlusion]\nratios = [0.5, 1.5]\n', "occlusion.ratios must lie in \\[0, 1\\]"),
        ('name = "x"\n[occlusion]\nmode = "random"\n', "occlusion.mode: 'random' is not one of"),
        ('name = "x"\n[occlusion]\nkernal = 3\n', "\\[occlusion\\] has unknown keys \\['kernal'\\]"),
        ('format_version = 2\nname = "x"\n', "format_version 2 is not supported"),
        ('name = "x', "not valid TOML"),
    ],
)
def test_invalid_protocol_files(tmp_path, content, message):
    path = tmp_path / "p.toml"
    path.write_text(content)
    with pytest.raises(ProtocolError, match=message) as excinfo:
        read_protocol(path)
    assert str(path) in str(excinfo.value)


def test_unknown_protocol_lists_presets():
    with pytest.raises(ProtocolError, match="no protocol preset or file 'h36m-p2'; presets: \\['h36m'"):
        get_protocol("h36m-p2")
