"""Past one machine: sampled mini-batch training, data-parallel training (DDP, gloo on CPU)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from kgwb.cli import main  # noqa: E402
from kgwb.data import load_dataset  # noqa: E402
from kgwb.train.data import build_collab_kg, prepare_interactions  # noqa: E402
from kgwb.train.models import build_model  # noqa: E402
from kgwb.train.sampler import (  # noqa: E402
    NeighborSampler,
    SamplerConfig,
    SamplerError,
    parse_fanouts,
    propagate_sampled,
)


@pytest.fixture(scope="module")
def tiny():
    ds = load_dataset("sample:tiny")
    return ds, prepare_interactions(ds, seed=0)


@pytest.mark.parametrize("name", ["lightgcn", "lightgcn+text"])
def test_sampling_every_neighbour_gives_the_full_graph_and_its_gradients(tiny, name):
    ds, data = tiny
    ckg = build_collab_kg(data, ds, None) if name.startswith("kgat") else None
    text = torch.randn(data.n_items, 8) if name.endswith("+text") else None
    net = build_model(name, data, kg=ckg, text_features=text)
    net.on_eval()
    net.train()
    n_nodes = net.propagate_nodes().shape[0]
    seeds = torch.unique(
        torch.randint(0, n_nodes, (60,), generator=torch.Generator().manual_seed(1))
    )
    weight = torch.randn(len(seeds), net.dim)

    full = net.propagate_nodes()[seeds]
    (full * weight).sum().backward()
    full_grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    net.zero_grad()

    sampler = NeighborSampler(net.sampling_graphs(), (10**6, 10**6))
    sub = sampler.sample(seeds)
    sampled = propagate_sampled(net, sub)
    (sampled * weight).sum().backward()
    assert torch.allclose(sampled, full, atol=1e-5)
    for n, p in net.named_parameters():
        if n in full_grads:
            assert torch.allclose(p.grad, full_grads[n], atol=1e-5), n


def test_capped_fanout_bounds_the_subgraph_and_is_unbiased(tiny):
    _, data = tiny
    net = build_model("lightgcn", data)
    net.eval()
    seeds = torch.arange(0, net.n_users, 7)
    sampler = NeighborSampler(net.sampling_graphs(), (3, 2))
    gen = torch.Generator().manual_seed(0)
    sub = sampler.sample(seeds, gen)
    first, second = sub.layers
    assert second["ui"].shape[0] == len(seeds)  # the last layer computes the seeds only
    assert second["ui"].values().numel() <= 3 * len(seeds)
    assert first["ui"].values().numel() <= 3 * len(seeds) + 2 * (len(sub.nodes) - len(seeds))
    with torch.no_grad():
        full = net.propagate_nodes()[seeds]
        mean = sum(propagate_sampled(net, sampler.sample(seeds, gen)) for _ in range(400)) / 400
    assert ((mean - full).norm() / full.norm()) < 0.05


def test_fanout_and_sampler_names_are_checked():
    assert parse_fanouts("15,10", 2) == (15, 10)
    assert parse_fanouts("8", 3) == (8, 8, 8)
    for bad in ("15,10,5", "15,x", "0,3"):
        with pytest.raises(SamplerError, match="fan-out"):
            parse_fanouts(bad, 2)
    with pytest.raises(SamplerError, match="neighbors"):
        SamplerConfig("layers")


def _train(tmp_path, name, *extra):
    out = tmp_path / name
    argv = ["train", "--dataset", "sample:tiny", "--epochs", "4", "--device", "cpu"]
    argv += ["--out", str(out), "--no-progress", "--save-top-k", "0", "--dim", "32", *extra]
    assert main(argv) == 0
    return json.loads((out / "metrics.json").read_text())


def test_sampled_training_records_its_sampler_and_learns(tmp_path, capsys, monkeypatch):
    full = _train(tmp_path, "full")
    sampled = _train(tmp_path, "sampled", "--sampler", "neighbors", "--fanout", "5,5")
    assert sampled["config"]["sampler"] == {"name": "neighbors", "fanouts": [5, 5]}
    assert full["config"]["sampler"]["name"] == "full"
    assert full["config"]["optimizer"] == sampled["config"]["optimizer"] == "Adam"
    # the tiny sample's test set is 200 users: a loose bar, the real one is in the benchmark
    assert sampled["test"]["recall@20"] >= 0.6 * full["test"]["recall@20"] > 0
    monkeypatch.setenv("KGWB_SPARSE_MIN_ROWS", "0")  # row-sparse tables, lazy Adam
    lazy = _train(tmp_path, "lazy", "--sampler", "neighbors", "--fanout", "5,5")
    assert lazy["config"]["optimizer"].startswith("lazy row-wise Adam")
    assert lazy["test"]["recall@20"] >= 0.6 * full["test"]["recall@20"]


@pytest.mark.parametrize("model", ["bprmf", "kgat"])
def test_a_model_without_sampled_propagation_says_so(tmp_path, capsys, model):
    argv = ["train", "--dataset", "sample:tiny", "--epochs", "1", "--device", "cpu"]
    argv += ["--out", str(tmp_path / "x"), "--model", model, "--sampler", "neighbors"]
    assert main(argv) == 2
    assert "does not support sampled training" in capsys.readouterr().err


def test_two_gloo_processes_match_one_and_resume_across_world_sizes(tmp_path, capsys):
    one = _train(tmp_path, "one")
    two = _train(tmp_path, "two", "--nproc", "2")
    assert two["config"]["world_size"] == 2 and two["config"]["backend"] == "gloo"
    assert one["config"]["world_size"] == 1
    assert two["epochs_run"] == one["epochs_run"] == 4
    # same global batches and random streams: equal up to floating-point summation order
    assert two["test"]["recall@20"] == pytest.approx(one["test"]["recall@20"], rel=0.1)
    assert two["curve"][-1]["loss"] == pytest.approx(one["curve"][-1]["loss"], rel=1e-3)
    checkpoints = tmp_path / "two" / "checkpoints"
    assert {p.name for p in checkpoints.iterdir()} >= {"best.safetensors", "last.safetensors"}

    # two processes for 2 epochs, then one process resumes to 4 (and the reverse)
    part = tmp_path / "part"
    argv = ["train", "--dataset", "sample:tiny", "--device", "cpu", "--out", str(part)]
    argv += ["--no-progress", "--save-top-k", "0", "--dim", "32"]
    assert main([*argv, "--epochs", "2", "--nproc", "2"]) == 0
    assert main([*argv, "--epochs", "4", "--resume"]) == 0
    resumed = json.loads((part / "metrics.json").read_text())
    assert resumed["epochs_run"] == 4
    assert resumed["curve"][-1]["loss"] == pytest.approx(one["curve"][-1]["loss"], rel=1e-3)
    assert resumed["test"]["recall@20"] == pytest.approx(one["test"]["recall@20"], rel=0.1)


def test_sampled_optimizer_touches_only_the_rows_of_the_batch(tiny):
    from kgwb.train.sampler import SampledTraining
    from kgwb.train.sparse_optim import RowAdam, RowSparseAdam, sampled_optimizer

    _, data = tiny
    net = build_model("lightgcn+text", data, text_features=torch.randn(data.n_items, 8))
    assert not isinstance(sampled_optimizer(net, 1e-2), RowSparseAdam)  # small table: dense
    assert not net.embedding.sparse
    opt = sampled_optimizer(net, 1e-2, sparse=True)
    assert isinstance(opt.sparse, RowAdam) and net.embedding.sparse
    sampled = SampledTraining(net, SamplerConfig("neighbors", (2, 2)))
    sampled.on_epoch_start()
    gen = torch.Generator().manual_seed(0)
    before = net.embedding.weight.detach().clone()
    proj = net.text_proj.weight.detach().clone()
    users = torch.arange(0, 8)
    pos, neg = torch.arange(3, 11), torch.arange(20, 28)
    touched = []
    real_sample = sampled.sampler.sample
    sampled.sampler.sample = lambda seeds, g=None: touched.append(s := real_sample(seeds, g)) or s
    bpr, l2 = sampled.bpr_loss(users, pos, neg, 1e-4, gen)
    opt.zero_grad()
    (bpr + l2).backward()
    assert net.embedding.weight.grad.is_sparse
    opt.step()
    moved = (net.embedding.weight.detach() != before).any(1)
    rows = torch.zeros(len(before), dtype=torch.bool)
    rows[touched[0].nodes] = True
    assert moved.any() and not (moved & ~rows).any()  # only sampled rows move
    state = opt.sparse.state[net.embedding.weight]
    assert not state["exp_avg"][~rows].any() and state["exp_avg"][rows].abs().sum() > 0
    assert not torch.equal(net.text_proj.weight, proj)  # dense parameters: dense Adam


def test_row_adam_matches_sparse_adam_and_sums_duplicate_rows():
    from kgwb.train.sparse_optim import RowAdam

    torch.manual_seed(0)
    a = torch.nn.Embedding(40, 4, sparse=True)
    b = torch.nn.Embedding(40, 4, sparse=True)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = RowAdam(a.parameters(), lr=0.1), torch.optim.SparseAdam(b.parameters(), lr=0.1)
    for _ in range(4):
        idx, dup = torch.randint(0, 40, (25,)), torch.randint(0, 40, (9,))
        for emb, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            (emb(idx).pow(2).sum() + emb(dup).sum()).backward()
            opt.step()
    # the same lazy update up to where eps enters (fused Adam kernel vs SparseAdam's formula)
    assert torch.allclose(a.weight, b.weight, atol=1e-4)


@pytest.mark.parametrize(
    "sampled",
    [["--sampler", "neighbors", "--fanout", "5,5"], ["--sampler", "history", "--fanout", "3"]],
    ids=["neighbors", "history"],
)
def test_sampled_run_resumes_like_an_uninterrupted_one(tmp_path, monkeypatch, sampled):
    monkeypatch.setenv("KGWB_SPARSE_MIN_ROWS", "0")  # row-sparse tables even on sample:tiny
    whole = _train(tmp_path, "whole", *sampled)
    assert whole["config"]["optimizer"].startswith("lazy row-wise Adam")
    part = tmp_path / "part"
    argv = ["train", "--dataset", "sample:tiny", "--device", "cpu", "--out", str(part)]
    argv += ["--no-progress", "--save-top-k", "0", "--dim", "32", *sampled]
    assert main([*argv, "--epochs", "2"]) == 0
    assert main([*argv, "--epochs", "4", "--resume"]) == 0
    resumed = json.loads((part / "metrics.json").read_text())
    assert resumed["curve"][-1]["loss"] == pytest.approx(whole["curve"][-1]["loss"], rel=1e-4)


def test_two_gloo_processes_train_sampled_with_sparse_gradients(tmp_path, monkeypatch):
    monkeypatch.setenv("KGWB_SPARSE_MIN_ROWS", "0")
    two = _train(tmp_path, "two", "--nproc", "2", "--sampler", "neighbors", "--fanout", "5,5")
    assert two["config"]["world_size"] == 2
    assert two["config"]["optimizer"].startswith("lazy row-wise Adam")
    assert two["test"]["recall@20"] > 0


# ------------------------------------------------------------------ --sampler history
def _history(net, fanout, refresh=0):
    from kgwb.train.sampler import sampled_training

    helper = sampled_training(net, SamplerConfig("history", (fanout,), refresh=refresh))
    helper.on_epoch_start()
    return helper


@pytest.mark.parametrize("fanout", [10**6, 2])
@pytest.mark.parametrize("name,layers", [("lightgcn", 2), ("lightgcn", 3), ("lightgcn+text", 2)])
def test_history_with_a_fresh_history_is_the_full_graph(tiny, name, layers, fanout):
    _, data = tiny
    text = torch.randn(data.n_items, 8) if name.endswith("+text") else None
    net = build_model(name, data, text_features=text, layers=layers)
    net.train()
    helper = _history(net, fanout)  # fresh: the drift term is zero whatever the fan-out
    n_nodes = net.n_users + net.n_items
    gen = torch.Generator().manual_seed(2)
    seeds = torch.unique(torch.randint(0, n_nodes, (80,), generator=gen))
    reps, _ = helper.representations(seeds, gen)
    with torch.no_grad():
        full = net.propagate_nodes()[seeds]
    assert torch.allclose(reps, full, atol=1e-5)


def test_history_one_layer_every_neighbour_gives_full_graph_values_and_gradients(tiny):
    _, data = tiny
    net = build_model("lightgcn", data, layers=1)
    net.train()
    helper = _history(net, 10**6)
    with torch.no_grad():  # the weights move after the history: a stale history
        net.embedding.weight.add_(0.1 * torch.randn_like(net.embedding.weight))
    seeds = torch.arange(0, net.n_users + net.n_items, 5)
    weight = torch.randn(len(seeds), net.dim)
    full = net.propagate_nodes()[seeds]
    (full * weight).sum().backward()
    full_grad = net.embedding.weight.grad.clone()
    net.zero_grad()
    reps, _ = helper.representations(seeds)
    (reps * weight).sum().backward()
    assert torch.allclose(reps, full, atol=1e-5)  # the correction makes layer 1 exact
    assert torch.allclose(net.embedding.weight.grad, full_grad, atol=1e-5)


def test_history_drift_correction_is_unbiased(tiny):
    _, data = tiny
    net = build_model("lightgcn", data, layers=1)
    helper = _history(net, 2)
    with torch.no_grad():
        net.embedding.weight.add_(0.1 * torch.randn_like(net.embedding.weight))
        seeds = torch.arange(0, net.n_users, 3)
        full = net.propagate_nodes()[seeds]
        gen = torch.Generator().manual_seed(0)
        draws = [helper.representations(seeds, gen)[0] for _ in range(400)]
    one = (draws[0] - full).norm()
    assert one > 0  # fan-out 2 is below most degrees: a single draw is off
    assert (sum(draws) / len(draws) - full).norm() < 0.2 * one  # the mean converges (1/sqrt(n))


def test_history_step_touches_only_the_one_hop_sample_of_the_batch(tiny):
    _, data = tiny
    net = build_model("lightgcn", data)
    net.train()
    fanout = 3
    helper = _history(net, fanout)
    samples = []
    real_sample = helper.sampler.sample
    helper.sampler.sample = lambda seeds, g=None: samples.append(s := real_sample(seeds, g)) or s
    users, pos, neg = torch.arange(0, 16), torch.arange(3, 19), torch.arange(20, 36)
    bpr, l2 = helper.bpr_loss(users, pos, neg, 1e-4, torch.Generator().manual_seed(0))
    (bpr + l2).backward()
    (sub,) = samples
    seeds = torch.unique(torch.cat([users, pos + net.n_users, neg + net.n_users]))
    assert torch.equal(sub.nodes[: sub.n_seeds], seeds)
    # one hop: at most `fanout` neighbours per seed, all of them adjacent to a seed
    assert len(sub.nodes) <= len(seeds) * (1 + fanout)
    assert len(sub.layers) == 1 and sub.layers[0]["ui"].values().numel() <= fanout * len(seeds)
    adj = net.adjacency.to_dense()
    one_hop = (adj[seeds] != 0).any(0)
    one_hop[seeds] = True
    assert one_hop[sub.nodes].all()
    touched = net.embedding.weight.grad.abs().sum(1) > 0
    rows = torch.zeros(len(touched), dtype=torch.bool)
    rows[sub.nodes] = True
    assert touched.any() and not (touched & ~rows).any()  # no row outside the sample
    assert int(touched.sum()) <= len(seeds) * (1 + fanout)


def test_history_refreshes_every_k_steps(tiny):
    _, data = tiny
    net = build_model("lightgcn", data)
    helper = _history(net, 5, refresh=2)
    calls = []
    real = helper.refresh_history
    helper.refresh_history = lambda: calls.append(1) or real()
    users, pos, neg = torch.arange(0, 8), torch.arange(3, 11), torch.arange(20, 28)
    for _ in range(5):
        helper.bpr_loss(users, pos, neg, 1e-4, None)
    assert len(calls) == 2  # before steps 3 and 5


def test_history_training_records_its_sampler_and_learns(tmp_path, capsys):
    untrained = _train(tmp_path, "untrained", "--epochs", "0")
    full = _train(tmp_path, "full")
    hist = _train(tmp_path, "history", "--sampler", "history", "--fanout", "5")
    assert hist["config"]["sampler"] == {
        "name": "history",
        "fanouts": [5],
        "history_refresh_steps": None,
    }
    assert hist["curve"][-1]["loss"] < hist["curve"][0]["loss"]
    assert hist["test"]["recall@20"] > untrained["test"]["recall@20"]
    assert hist["test"]["recall@20"] >= 0.6 * full["test"]["recall@20"] > 0
    refreshed = _train(tmp_path, "k", "--sampler", "history", "--history-refresh", "3")
    assert refreshed["config"]["sampler"]["history_refresh_steps"] == 3
    assert refreshed["config"]["sampler"]["fanouts"] == [15]  # the first of 15,10


@pytest.mark.parametrize("model", ["bprmf", "kgat"])
def test_history_refuses_a_model_without_sampled_propagation(tmp_path, capsys, model):
    argv = ["train", "--dataset", "sample:tiny", "--epochs", "1", "--device", "cpu"]
    argv += ["--out", str(tmp_path / "x"), "--model", model, "--sampler", "history"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "does not support sampled training with --sampler history" in err
    assert "use --sampler full" in err


def test_history_uses_row_sparse_tables_from_a_lower_threshold(tiny):
    from kgwb.train.sparse_optim import (
        HISTORY_SPARSE_MIN_ROWS,
        SPARSE_MIN_ROWS,
        RowSparseAdam,
        sampled_optimizer,
    )

    assert SamplerConfig("history", (5,)).sparse_min_rows == HISTORY_SPARSE_MIN_ROWS
    assert SamplerConfig("neighbors", (5, 5)).sparse_min_rows == SPARSE_MIN_ROWS
    _, data = tiny
    net = build_model("lightgcn", data)
    rows = net.embedding.num_embeddings
    assert isinstance(sampled_optimizer(net, 1e-2, min_rows=rows), RowSparseAdam)
    net = build_model("lightgcn", data)
    assert not isinstance(sampled_optimizer(net, 1e-2, min_rows=rows + 1), RowSparseAdam)


# ------------------------------------------------------------------ per-step costs (issue #14)
def test_negative_sampler_rechecks_only_redrawn_negatives_with_the_same_result():
    from kgwb.train.trainer import NegativeSampler

    def every_round_checks_all(sampler, users, gen):  # the loop before: rounds + 1 searches
        neg = sampler._draw(users, gen)
        for _ in range(sampler.rounds):
            redraw = sampler._draw(users, gen)
            neg = torch.where(sampler._positive(users, neg), redraw, neg)
        return neg

    g = torch.Generator().manual_seed(0)
    n_users, n_items = 300, 40  # dense enough that negatives hit positives often
    train = torch.stack(
        [
            torch.randint(0, n_users, (6000,), generator=g),
            torch.randint(0, n_items, (6000,), generator=g),
        ],
        1,
    ).unique(dim=0)
    for exclude in (None, [1, 2, 3]):
        sampler = NegativeSampler(train, n_items, torch.device("cpu"), exclude=exclude)
        ga, gb = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        for _ in range(10):
            users = torch.randint(0, n_users, (512,), generator=g)
            fast, reference = sampler(users, ga), every_round_checks_all(sampler, users, gb)
            assert torch.equal(fast, reference)
        assert torch.equal(ga.get_state(), gb.get_state())  # the same random stream after
    first = sampler._draw(users, torch.Generator().manual_seed(9))
    assert sampler._positive(users, first).sum() > 50  # redraws were exercised


def test_gather_rows_gives_the_embedding_gradient(tiny):
    from kgwb.train.sparse_optim import gather_rows

    _, data = tiny
    for sparse in (False, True):
        net = build_model("lightgcn", data)
        net.embedding.sparse = sparse
        nodes = torch.tensor([7, 3, 40, 11, 0])  # distinct, unsorted
        weight = torch.randn(len(nodes), net.dim)
        (gather_rows(net.embedding, nodes) * weight).sum().backward()
        grad = net.embedding.weight.grad
        expected = torch.zeros_like(net.embedding.weight).index_add_(0, nodes, weight)
        assert grad.is_sparse == sparse and torch.allclose(grad.to_dense(), expected)


def test_history_l2_from_the_layer0_gather_equals_the_ego_penalty(tiny):
    _, data = tiny
    net = build_model("lightgcn", data)
    net.train()
    helper = _history(net, 3)
    users, pos, neg = torch.arange(0, 16), torch.arange(3, 19), torch.arange(20, 36)
    users[1] = users[0]  # duplicate batch entries count once per entry, as in ego
    _, l2 = helper.bpr_loss(users, pos, neg, 1e-4, torch.Generator().manual_seed(0))
    ego = sum(e.pow(2).sum() for e in net.ego(users, pos, neg))
    assert torch.allclose(l2, 1e-4 * 0.5 * ego / len(users))


def test_sampled_matmul_backward_scatter_and_transpose_agree(monkeypatch):
    from kgwb.train import sampler as sampler_mod

    gen = torch.Generator().manual_seed(0)
    rows, cols, nnz = 30, 50, 120
    dense = torch.zeros(rows, cols)
    dense.view(-1)[torch.randperm(rows * cols, generator=gen)[:nnz]] = torch.rand(
        nnz, generator=gen
    )
    a = dense.to_sparse_csr()
    x = torch.randn(cols, 8, generator=gen)
    grads = []
    for limit in (1 << 30, 0):  # scatter (index_add) backward, then the transpose's
        monkeypatch.setattr(sampler_mod, "SCATTER_BACKWARD_MAX_BYTES", limit)
        xg = x.clone().requires_grad_(True)
        out = sampler_mod.sampled_matmul(a, xg)
        assert torch.allclose(out, dense @ x, atol=1e-6)
        (out * torch.arange(8.0)).sum().backward()
        grads.append(xg.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
    assert torch.allclose(grads[0], dense.t() @ torch.arange(8.0).expand(rows, 8), atol=1e-5)


def test_row_adam_moment_block_matches_separate_moments_and_survives_a_checkpoint(tmp_path):
    from kgwb.train.sparse_optim import RowAdam

    torch.manual_seed(0)
    tables = [torch.nn.Embedding(40, 4, sparse=True) for _ in range(2)]
    tables[1].load_state_dict(tables[0].state_dict())
    block, separate = (
        RowAdam(tables[0].parameters(), lr=0.1),
        RowAdam(tables[1].parameters(), lr=0.1),
    )
    separate._moment_block = lambda p, state: None  # the layout before the block

    def steps(n, pairs):
        for _ in range(n):
            idx = torch.randint(0, 40, (25,))
            for emb, opt in pairs:
                opt.zero_grad()
                emb(idx).pow(2).sum().backward()
                opt.step()

    steps(3, [(tables[0], block), (tables[1], separate)])
    torch.save(block.state_dict(), tmp_path / "opt.pt")
    resumed = RowAdam(tables[0].parameters(), lr=0.1)
    resumed.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    steps(3, [(tables[0], resumed), (tables[1], separate)])
    assert torch.equal(tables[0].weight, tables[1].weight)
    for key in ("exp_avg", "exp_avg_sq"):
        assert torch.equal(
            resumed.state[tables[0].weight][key], separate.state[tables[1].weight][key]
        )


def test_threads_flag_and_cpu_seconds_are_recorded(tmp_path, capsys):
    threads = torch.get_num_threads()
    try:
        run = _train(tmp_path, "one", "--sampler", "history", "--fanout", "3", "--threads", "1")
    finally:
        torch.set_num_threads(threads)
    assert run["config"]["torch_threads"] == 1
    assert all(row["train_cpu_seconds"] > 0 for row in run["curve"])
