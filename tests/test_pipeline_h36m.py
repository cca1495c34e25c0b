"""End to end on Human3.6M-shaped data: VideoPose3D files -> convert -> train -> run under the h36m preset."""

from __future__ import annotations

import numpy as np
import pytest
from h36m_fixtures import H36M_CAMERAS, H36M_EXTRINSICS, KEPT_32, make_motion, project_h36m_ref, world_to_camera_ref, write_npz

from converters.h36m import convert_h36m
from posebench.runner import run_benchmark
from posebench.train import train_model

FRAMES = 40


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("h36m_pipeline")
    worlds = {
        "S1": {"Walking 1": make_motion(FRAMES, 32, 1), "Directions": make_motion(FRAMES, 32, 2)},
        "S11": {"Walking 1": make_motion(FRAMES, 32, 3), "Directions": make_motion(FRAMES, 32, 4)},
    }
    write_npz(root / "vp3d" / "data_3d_h36m.npz",
              positions_3d={s: {a: (w / 1000).astype(np.float32) for a, w in actions.items()} for s, actions in worlds.items()})
    rng = np.random.default_rng(0)
    cpn = {
        s: {a: [(project_h36m_ref(world_to_camera_ref(w[:, KEPT_32], *H36M_EXTRINSICS[s][c]), c) + rng.normal(0, 2, (FRAMES, 17, 2))).astype(np.float32)
                for c in H36M_CAMERAS] for a, w in actions.items()}
        for s, actions in worlds.items()
    }
    write_npz(root / "vp3d" / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=cpn,
              metadata={"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]})
    dataset = convert_h36m(root / "vp3d")
    dataset_path = dataset.save(root / "h36m.parquet")
    trained = train_model("tcn", dataset, out_dir=root / "train", epochs=2, batch_size=64, source="cpn_ft_h36m_dbb",
                          params={"filter_widths": (3, 3), "channels": 16}, seed=0)
    run = run_benchmark(["tcn"], checkpoints=[trained.checkpoint], dataset=dataset_path, protocol="h36m", out=root / "run", progress=False)
    return dataset, run


def test_the_h36m_preset_reads_the_converted_dataset(pipeline):
    dataset, run = pipeline
    results = run.results
    assert results.protocol.unique().tolist() == ["h36m"]
    assert sorted(results.metric.unique()) == ["mpjpe", "mpjve", "n_mpjpe", "p_mpjpe"]
    # S11 Directions is excluded by the preset; sub-actions pool by first word
    assert run.manifest["dataset"]["scored_frames"] == FRAMES * len(H36M_CAMERAS)
    actions = results[(results.stratum_kind == "action") & (results.metric == "mpjpe")].stratum.tolist()
    assert actions == ["Walking"]
    assert "known_issue" in dataset["S11/Directions/54138969"].attributes
    overall = results[(results.stratum_kind == "overall") & (results.metric == "mpjpe")].set_index("stratum").value
    assert overall["action_mean"] == pytest.approx(overall["frame_mean"])  # one action: both averages agree
    assert np.isfinite(results.value).all()
