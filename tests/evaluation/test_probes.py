"""The headline numbers of frozen evaluation against answers known by hand: the kNN vote, the feature
readout against timm's own intermediate outputs, the linear head chosen on the held-out split (not on test),
the feature cache's key; and the registry: options, defaults from the old eval fields, manifest checks,
`lejepa list probes` / `lejepa describe probe`."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_tiny_spec, manifest_problems, write_manifest

from evaluation.evaluate import evaluate_frozen
from evaluation.features import cached
from evaluation.knn import knn_accuracy
from evaluation.probes import PROBES, ProbeContext, SplitFeatures, build_probes, get_probe, probe_options
from lejepa.backbones import create_backbone
from lejepa.spec import EvalSpec, ModelSpec

pytestmark = pytest.mark.usefixtures("one_thread")
BUILT_IN = ["linear", "few_shot", "knn", "online_linear"]  # the probes, in registry order

# ------------------------------------------------------------------------------------------------ kNN

# Five training points around the query direction (1, 0): cosine similarities 1, cos 45, cos 45, 0, -1.
TRAIN = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0], [0.0, 1.0], [-1.0, 0.0]])
TRAIN_LABELS = torch.tensor([0, 1, 1, 2, 0])
COS45 = math.sqrt(0.5)


def _vote(k: int, temperature: float) -> int:
    """The class DINO's weighted vote gives the query (1, 0), written out by hand."""
    weight = {s: math.exp(s / temperature) for s in (1.0, COS45, 0.0, -1.0)}
    votes = {1: {0: weight[1.0]},
             3: {0: weight[1.0], 1: 2 * weight[COS45]},
             5: {0: weight[1.0] + weight[-1.0], 1: 2 * weight[COS45], 2: weight[0.0]}}[k]
    return max(votes, key=votes.get)


@pytest.mark.parametrize("temperature", [0.07, 1.0])
def test_knn_accuracy_is_the_hand_computed_weighted_vote(temperature):
    """k = 3 at T = 0.07: the one exact neighbour (class 0) outweighs two at 45 degrees (class 1), against the
    majority; at T = 1 the majority wins. Scaling any feature changes nothing (L2-normalised)."""
    assert (_vote(3, 0.07), _vote(3, 1.0)) == (0, 1)  # the case is the one described
    query = torch.tensor([[2.0, 0.0]])
    scales = torch.tensor([[3.0], [0.5], [7.0], [1.0], [2.0]])
    for truth in (0, 1, 2):
        accuracy = knn_accuracy(TRAIN * scales, TRAIN_LABELS, query, torch.tensor([truth]), 3, ks=(1, 3, 5),
                                temperature=temperature)
        assert accuracy == {k: float(_vote(k, temperature) == truth) for k in (1, 3, 5)}


def test_knn_accuracy_counts_over_chunks_and_clips_k_to_the_training_set():
    queries = torch.tensor([[1.0, 0.1], [0.1, 1.0], [-1.0, 0.05], [0.9, -1.0]])
    truth = torch.tensor([0, 2, 0, 0])  # the nearest training points' classes are 0, 2, 0 and 1
    whole = knn_accuracy(TRAIN, TRAIN_LABELS, queries, truth, 3, ks=(1, 200), temperature=0.07)
    assert whole[1] == 0.75
    assert knn_accuracy(TRAIN, TRAIN_LABELS, queries, truth, 3, ks=(1, 200), temperature=0.07, chunk=1) == whole
    assert whole[200] == knn_accuracy(TRAIN, TRAIN_LABELS, queries, truth, 3, ks=(5,), temperature=0.07)[5]


# ------------------------------------------------------------------------------------- feature readout

TINY_VIT = ModelSpec(arch="vit_tiny_patch16_224", timm_kwargs={"embed_dim": 32, "depth": 3, "num_heads": 2})


def test_the_readout_is_timms_own_intermediate_cls_of_the_last_two_blocks():
    """features() = [CLS of block -2 | CLS of block -1], each after the final norm, as timm's
    forward_intermediates gives them; its second half (last_cls) is the pooled forward() of a CLS-pooled ViT."""
    torch.manual_seed(0)
    backbone = create_backbone(TINY_VIT, 32).eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        features, pooled = backbone.readouts(images)
        intermediates = backbone.model.forward_intermediates(images, indices=2, return_prefix_tokens=True, norm=True,
                                                             output_fmt="NLC", intermediates_only=True)
        expected = torch.cat([prefix[:, 0] for _, prefix in intermediates], dim=1)
        assert features.shape == (3, 64)
        assert torch.allclose(features, expected, atol=1e-6)
        assert torch.allclose(features, backbone.features(images))
        assert torch.allclose(pooled, backbone(images)) and torch.allclose(features[:, 32:], pooled, atol=1e-6)


def test_a_cnn_reads_one_pooled_feature():
    backbone = create_backbone(ModelSpec(arch="resnet18", timm_kwargs={"channels": [8, 16, 32, 64]}), 16).eval()
    with torch.no_grad():
        features, pooled = backbone.readouts(torch.randn(2, 3, 16, 16))
    assert features.shape == (2, 64) and torch.equal(features, pooled)


# --------------------------------------------------------------------------- the head held out to choose


def _shifted(n: int, seed: int, a_sign: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Column 0 says the class strongly (sign a_sign), columns 1-2 weakly: (+0.5, -0.5) x class sign + noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    sign = labels.float() * 2 - 1
    a = a_sign * 3 * sign + 0.5 * torch.randn(n, generator=g)
    b = torch.stack([0.5 * sign, -0.5 * sign], 1) + torch.randn(n, 2, generator=g)
    return torch.cat([a[:, None], b], 1), labels


def _linear_context(choices: dict[str, slice]) -> ProbeContext:
    train_x, train_y = _shifted(600, seed=1, a_sign=1.0)
    test_x, test_y = _shifted(400, seed=2, a_sign=-1.0)  # column 0 now points the other way
    spec = make_tiny_spec(eval={"probes": ("linear",), "probe_options": {"linear": {"lrs": [1e-2], "epochs": 60}}})
    return ProbeContext(spec, 2, SplitFeatures(train_x, train_y), SplitFeatures(test_x, test_y), choices, "tokens",
                        torch.device("cpu"))


def test_the_head_is_chosen_on_the_held_out_split_not_on_test():
    """On train (and its held-out 10%) all three columns beat the weak two alone; on test column 0 has
    turned against the class, so the head that would score best on test is the other one. The probe
    must report the held-out choice and its (poor) test number."""
    both = {"all": slice(None), "last_block": slice(1, None)}
    (probe,) = build_probes(_linear_context(both).spec)
    section = probe.run(_linear_context(both))
    assert section["head"]["features"] == "all" and section["head"]["holdout_top1"] > 0.95
    assert section["top1"] < 0.1
    weak_only = probe.run(_linear_context({"last_block": slice(1, None)}))
    assert weak_only["top1"] > 0.6  # the test-best head, which the held-out split rightly did not pick


# ------------------------------------------------------------------------------------------ the cache


def test_the_feature_cache_recomputes_when_its_key_differs(tmp_path):
    path, calls = tmp_path / "features" / "train.pt", []

    def compute(value):
        calls.append(value)
        return {"frozen": torch.full((2, 3), value)}, torch.tensor([0, 1])

    first = cached(path, "step6:2:frozen:fp32", lambda: compute(1.0))
    again = cached(path, "step6:2:frozen:fp32", lambda: compute(2.0))
    assert calls == [1.0] and torch.equal(again[0]["frozen"], first[0]["frozen"])
    for key in ("step9:2:frozen:fp32", "step9:2:frozen:bf16", "step9:3:frozen:bf16"):  # weights, precision, images
        assert cached(path, key, lambda: compute(float(len(calls) + 1)))[0]["frozen"][0, 0] == len(calls)
    assert calls == [1.0, 2.0, 3.0, 4.0]


def test_evaluation_extracts_once_per_weights(tmp_path, monkeypatch):
    """Every probe reads the features extracted once; new weights (another weights key) extract again."""
    import evaluation.evaluate as evaluate_module
    from lejepa.methods import build_method

    extracted = []
    real = evaluate_module.extract_features

    def counting(*args, **kwargs):
        extracted.append(len(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "extract_features", counting)
    spec = make_tiny_spec(data={"train_limit": 200, "test_limit": 100}, eval={"probes": ("linear", "knn")})
    method = build_method(spec, 16)
    first = evaluate_frozen(spec, method, tmp_path, "step0", torch.device("cpu"))
    assert extracted == [200, 100]
    again = evaluate_frozen(spec, method, tmp_path, "step0", torch.device("cpu"))
    assert extracted == [200, 100] and again["probes"]["knn"]["top1@20"] == first["probes"]["knn"]["top1@20"]
    evaluate_frozen(spec, method, tmp_path, "step3", torch.device("cpu"))
    assert extracted == [200, 100, 200, 100]


# ------------------------------------------------------------------------------------------ the registry


def test_the_default_probes_and_options_are_the_old_eval_fields():
    """A spec without eval.probes runs what the old switches named, with the old fields as options, so runs
    made before the registry keep their ids and recompute their numbers."""
    assert EvalSpec().probe_names() == ("linear", "knn")
    assert EvalSpec(few_shot=(1,)).probe_names() == ("linear", "few_shot", "knn")
    assert EvalSpec(linear=False, few_shot=(1,)).probe_names() == ("knn",)
    spec = EvalSpec(knn_k=(5, 20), knn_temperature=0.1, linear_lrs=(0.5,))
    knn = probe_options(get_probe("knn"), spec)
    assert (knn.k, knn.temperature, knn.feature) == ((5, 20), 0.1, "two_block")
    assert probe_options(get_probe("linear"), spec).lrs == (0.5,)
    given = EvalSpec(knn_k=(5, 20), probe_options={"knn": {"k": [20, 200], "feature": "last_cls"}})
    assert probe_options(get_probe("knn"), given).k == (20, 200)
    assert [p for p in PROBES if p in BUILT_IN] == BUILT_IN  # and any added since


def test_probe_lists_and_options_are_checked_when_the_manifest_loads(tmp_path):
    path = write_manifest(tmp_path, """\
        name: probes
        defaults:
          data: {name: digits}
          eval: {probes: [knn, few_shot, linear, knnn], probe_options: {knn: {k: [20, 0], featur: last_cls},
                 online_linear: {lr: 0.1}}}
        """)
    message = manifest_problems(path)
    assert "unknown probe 'knnn'; did you mean knn?" in message
    assert "probe 'few_shot' reads the results of linear: list linear before few_shot" in message
    assert "eval.probe_options.knn.k: must be > 0, got 0" in message
    assert "probe 'knn' has no option 'featur'; did you mean feature?" in message
    assert "options for probe 'online_linear', which this run does not run" in message


def test_eval_probes_at_their_defaults_keep_run_ids():
    from conftest import TINY

    assert make_tiny_spec(eval={"probes": None, "probe_options": {}}).run_id == TINY.run_id
    assert make_tiny_spec(eval={"probes": ("linear", "knn")}).run_id != TINY.run_id  # stated: another spec


def test_list_and_describe_probes(capsys):
    from experiments.cli import main

    assert main(["list", "probes"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in listed] == list(PROBES)
    assert [p for p in PROBES if p in BUILT_IN] == BUILT_IN
    assert main(["describe", "probe", "knn"]) == 0
    text = capsys.readouterr().out
    assert "knn_top1@20: kNN@20 top-1 (headline); protocol kNN k=20 T=0.07, feature two_block" in text
    assert "(default: eval.knn_k)" in text and "last_cls" in text
    assert main(["describe", "probe", "knm"]) == 2
    assert "unknown probe 'knm'; did you mean knn?" in capsys.readouterr().err
