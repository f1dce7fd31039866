"""fastmf.tune.search: samplers, successive halving, determinism, threads, refit, honesty."""

import math

import numpy as np
import pytest

import fastmf
from fastmf._validation import Interval, Options, RandomState
from fastmf.models import registry
from fastmf.models.base import Recommender
from fastmf.tune import Choice, Float, FloatLog, Int, IntLog, SearchSpec, halving_rungs, propose, search


# ---------------------------------------------------------------------- a model with a known optimum
class FakeModel(Recommender):
    """Predicts 3 + f(x, epochs) for every pair, so on data whose ratings are all 3 the validation
    RMSE is exactly |f|: f = (x - 0.3)^2 + speed / epochs. It counts its partial fits."""

    _constraints = {"x": Interval("real", 0, 1), "n_epochs": Interval("int", 0, None),
                    "speed": Interval("real", 0, None), "random_state": RandomState(),
                    "n_threads": (Options(None, -1), Interval("int", 1, 64))}
    calls = []

    def __init__(self, x=0.5, n_epochs=10, speed=1.0, random_state=None, n_threads=None):
        self.x, self.n_epochs, self.speed = x, n_epochs, speed
        self.random_state, self.n_threads = random_state, n_threads

    def fit(self, train):
        self._start_fit(train)
        self.epochs_ = 0
        return self.partial_fit(train, self.n_epochs)

    def partial_fit(self, train, n_epochs):
        if not hasattr(self, "epochs_"):
            self._start_fit(train)
            self.epochs_ = 0
        FakeModel.calls.append((self.x, n_epochs))
        self.epochs_ += n_epochs
        return self

    def value(self):
        return (self.x - 0.3) ** 2 + self.speed / max(self.epochs_, 1)

    def _predict_pairs(self, u, i):
        return np.full(len(u), 3.0 + self.value())

    def _score_users(self, u):
        return np.zeros((len(u), self.n_items_))


@pytest.fixture
def fake():
    entry = registry.register(registry.ModelEntry(
        "fake_tune", f"{__name__}:FakeModel", "a test model with a known optimum",
        frozenset({"predicts_ratings", "iterative", "thread_invariant"}),
        search_space=SearchSpec({"x": Float(0.0, 1.0)}, budget="n_epochs", max_budget=27)))
    FakeModel.calls = []
    yield entry
    registry.unregister("fake_tune")


@pytest.fixture(scope="module")
def threes():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 50, 3000)
    i = rng.integers(0, 40, 3000)
    pairs = np.unique(np.c_[u, i], axis=0)
    return fastmf.Ratings.from_arrays(pairs[:, 0], pairs[:, 1], np.full(len(pairs), 3.0))


@pytest.fixture(scope="module")
def small():
    return fastmf.make_ratings(200, 150, 8000, seed=3)


def without_seconds(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


# ---------------------------------------------------------------------- samplers
def test_grid_spreads_each_axis_and_stays_within_the_budget():
    dists = {"a": FloatLog(0.001, 0.1), "b": Choice("x", "y"), "c": Int(1, 3)}
    configs = propose(dists, 18, "grid", 0)
    assert len(configs) == 18  # 2 choices x 3 levels x 3 ints
    assert sorted({c["a"] for c in configs}) == pytest.approx([0.001, 0.01, 0.1])
    assert {c["b"] for c in configs} == {"x", "y"} and {c["c"] for c in configs} == {1, 2, 3}
    assert len(propose(dists, 17, "grid", 0)) == 8  # 2 levels: 2 x 2 x 2
    with pytest.raises(ValueError, match="choices alone make 2 combinations"):
        propose(dists, 1, "grid", 0)


def test_grid_of_an_int_axis_never_repeats_a_value():
    configs = propose({"k": IntLog(8, 10)}, 64, "grid", 0)
    assert [c["k"] for c in configs] == [8, 9, 10]


def test_random_draws_are_in_the_space_and_seeded():
    dists = {"lr": FloatLog(1e-3, 1e-1), "k": IntLog(8, 256), "r": Float(0, 1), "s": Choice(1, 2, 3)}
    a = propose(dists, 200, "random", 7)
    assert a == propose(dists, 200, "random", 7) and a != propose(dists, 200, "random", 8)
    for c in a:
        assert all(d.contains(c[n]) for n, d in dists.items())
    lr = np.log10([c["lr"] for c in a])
    assert lr.min() < -2.6 and lr.max() > -1.4 and abs(np.median(lr) + 2) < 0.25  # log-uniform
    assert {c["s"] for c in a} == {1, 2, 3}


def test_sobol_covers_the_unit_square_evenly():
    pytest.importorskip("scipy")
    configs = propose({"a": Float(0, 1), "b": Float(0, 1)}, 64, "sobol", 0)
    cells = {(int(c["a"] * 8), int(c["b"] * 8)) for c in configs}
    assert len(cells) >= 56  # a random draw fills about 40 of the 64 cells


def test_int_log_from_unit_reaches_both_ends():
    d = IntLog(8, 256)
    assert d.from_unit(0.0) == 8 and d.from_unit(0.999999) == 256
    assert Int(1, 3).from_unit(0.5) == 2 and Choice("a", "b").from_unit(0.99) == "b"


@pytest.mark.parametrize("bad", [lambda: FloatLog(0, 1), lambda: Float(1, 1), lambda: IntLog(0, 5),
                                 lambda: Int(2, 1.5), lambda: Choice()])
def test_bad_distributions_raise(bad):
    with pytest.raises(ValueError):
        bad()


# ---------------------------------------------------------------------- halving
def test_halving_rungs():
    assert halving_rungs(64, 4, 100, 3) == [(4, 64), (12, 21), (34, 7), (100, 2)]
    assert halving_rungs(27, 1, 27, 3) == [(1, 27), (3, 9), (9, 3), (27, 1)]
    assert halving_rungs(8, 5, 5, 3) == [(5, 8)]
    rungs = halving_rungs(100, 1, 40, 2)
    assert rungs[-1][0] == 40 and all(b[0] > a[0] and b[1] <= a[1] for a, b in zip(rungs, rungs[1:]))


def test_halving_finds_the_known_optimum_and_keeps_a_third_per_rung(fake, threes):
    found = search("fake_tune", {"x": Float(0.0, 1.0)}, threes, budget=27, sampler="grid", max_epochs=27,
                   min_epochs=1, n_jobs=1)
    assert [(r["epochs"], r["trials"]) for r in found.rungs] == [(1, 27), (3, 9), (9, 3), (27, 1)]
    xs = np.linspace(0, 1, 27)
    assert found.best_params_["x"] == pytest.approx(xs[np.argmin(abs(xs - 0.3))])
    assert found.best_epochs_ == 27  # f falls with the epochs
    assert found.best_score_ == pytest.approx(found.best_params_["x"] * 0 + (found.best_params_["x"] - 0.3) ** 2
                                              + 1 / 27, rel=1e-9)
    # the epochs each trial reached: the 9 nearest 0.3 went on to 3, the 3 nearest to 9
    reached = {round(r["x"], 9): r["epochs"] for r in found.records}
    order = sorted(reached, key=lambda x: (abs(x - 0.3), x))
    assert [reached[x] for x in order[:1]] == [27]
    assert all(reached[x] >= 9 for x in order[:3]) and all(reached[x] == 3 for x in order[3:9])
    assert all(reached[x] == 1 for x in order[9:])
    # continued, never refitted: a trial's epochs are the sum of its partial fits
    trained = sum(n for _, n in FakeModel.calls)
    refit = found.refit_epochs_
    assert trained == 27 * 1 + 9 * 2 + 3 * 6 + 1 * 18 + refit


def test_a_plain_search_without_halving_trains_every_trial_fully(fake, threes):
    found = search("fake_tune", None, threes, budget=5, sampler="grid", max_epochs=8, halving=False, n_jobs=1)
    assert all(r["epochs"] == 8 for r in found.records) and len(found.records) == 5


def test_best_epochs_come_from_the_checkpoints_of_the_last_rung(fake, threes):
    # speed = 0: the value does not depend on epochs, so the first checkpoint is the best (ties: fewer)
    found = search(FakeModel(speed=0.0), {"x": Float(0.0, 1.0)}, threes, budget=3, sampler="grid",
                   max_epochs=16, min_epochs=16, n_jobs=1)
    assert found.best_epochs_ == 2  # checkpoints 2, 4, ..., 16 of the only rung


def test_refit_scales_the_epochs_to_the_whole_data(small):
    space = {"reg": FloatLog(0.01, 0.1)}
    model = fastmf.MatrixFactorization(n_factors=8, ranking="rating")
    found = search(model, space, small, budget=3, max_epochs=9, min_epochs=3, sampler="grid", scale_epochs=True)
    n_fit = round(0.9 * len(small))
    assert found.refit_epochs_ == max(1, round(found.best_epochs_ * len(small) / n_fit))
    assert found.best_model_.n_epochs == found.refit_epochs_
    assert found.best_model_.ranking == "rating" and found.best_model_.reg == found.best_params_["reg"]
    assert len(found.best_model_.history_) == found.refit_epochs_
    assert found.best_model_.n_users_ == small.n_users  # refit on all of data
    # SGD MF keeps the validated epoch count by default (its registry entry says so)
    plain = search(model, space, small, budget=3, max_epochs=9, min_epochs=3, sampler="grid")
    assert plain.refit_epochs_ == plain.best_epochs_ == found.best_epochs_


def test_refit_epochs_scale_by_default_where_the_registry_says_so(fake, threes):
    found = search("fake_tune", {"x": Choice(0.3)}, threes, budget=1, max_epochs=9, min_epochs=9)
    n_fit = round(0.9 * len(threes))
    assert found.best_epochs_ == 9 and found.refit_epochs_ == round(9 * len(threes) / n_fit) > 9


def test_search_is_deterministic_and_independent_of_n_jobs(small):
    space = {"n_factors": IntLog(4, 32), "lr": FloatLog(0.005, 0.05), "reg": FloatLog(0.01, 0.2)}
    runs = [search("mf", space, small, budget=9, max_epochs=9, n_jobs=j, random_state=5) for j in (1, 2, 1)]
    first = without_seconds(runs[0].records)
    for r in runs[1:]:
        assert without_seconds(r.records) == first
        assert r.best_params_ == runs[0].best_params_ and r.best_epochs_ == runs[0].best_epochs_
        assert np.array_equal(r.best_model_.user_factors_, runs[0].best_model_.user_factors_)
    other = search("mf", space, small, budget=9, max_epochs=9, n_jobs=1, random_state=6)
    assert without_seconds(other.records) != first
    assert runs[1].n_jobs == 2 and runs[1].n_threads == 1


def test_kfold_validation_averages_the_folds(fake, threes):
    found = search("fake_tune", {"x": Choice(0.3, 0.9)}, threes, validation="kfold:3", budget=2,
                   sampler="grid", max_epochs=3, min_epochs=3, n_jobs=1)
    assert found.best_params_ == {"x": 0.3} and found.best_score_ == pytest.approx(1 / 3)
    # three models per trial, each trained for the 3 epochs at checkpoints 1, 2, 3
    assert len([c for c in FakeModel.calls if c[0] == 0.9]) == 3 * 3


def test_temporal_validation_holds_out_the_latest(small):
    u, i, r, _ = small.to_arrays()
    ds = fastmf.Ratings.from_arrays(u, i, r, timestamps=np.arange(len(u)))
    found = search("biases", None, ds, validation="temporal:0.2", budget=2, metric="mae")
    assert "latest 0.2" in found.validation
    with pytest.raises(ValueError, match="timestamps"):
        search("biases", None, small, validation="temporal:0.2", budget=2)


def test_a_given_validation_set_and_refit_on_both(small):
    train, valid = fastmf.split.random_split(small, test_size=0.25, random_state=0)
    found = search("biases", None, train, validation=valid, budget=3)
    assert len(found.best_model_.seen_indices_) == len(small)


def test_ranking_metric_search(small):
    found = search("ials", {"reg": FloatLog(0.01, 1.0)}, small, metric="ndcg@5", budget=3, max_epochs=4,
                   sampler="grid")
    assert found.direction == 1 and 0 <= found.best_score_ <= 1
    assert found.best_score_ == max(r["best_ndcg@5"] for r in found.records)


def test_rating_trials_skip_the_engagement_model_and_the_refit_keeps_it(small):
    found = search("mf", {"reg": FloatLog(0.01, 0.1)}, small, budget=2, max_epochs=3, sampler="grid")
    assert found.best_model_.ranking == "engagement"
    assert found.best_model_.__dict__.get("user_engagement_") is not None


def test_frame_and_records(small):
    pytest.importorskip("pandas")
    found = search("biases", None, small, budget=4)
    frame = found.to_frame()
    assert list(frame["trial"]) == [r["trial"] for r in found.table().records]
    assert frame["best_rmse"].is_monotonic_increasing
    assert {"reg_user", "reg_item", "status", "seconds"} <= set(frame.columns)


def test_diverging_trials_are_recorded_not_fatal(small):
    found = search("mf", {"lr": Choice(0.01, 50.0)}, small, budget=2, sampler="grid", max_epochs=3,
                   min_epochs=1, random_state=0)
    statuses = {r["lr"]: r["status"] for r in found.records}
    assert statuses[0.01] == "ok" and statuses[50.0].startswith("diverged")
    assert found.best_params_ == {"lr": 0.01}


def test_tpe_sampler_with_optuna(small):
    pytest.importorskip("optuna")
    a = search("biases", None, small, budget=10, sampler="tpe", random_state=1)
    b = search("biases", None, small, budget=10, sampler="tpe", random_state=1, n_jobs=1)
    assert without_seconds(a.records) == without_seconds(b.records)
    assert len(a.records) == 10


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, match", [
    (dict(space={"nope": Float(0, 1)}), "not a parameter"),
    (dict(space={"reg": Float(-1, 1)}), "reaches -1"),
    (dict(space={"n_epochs": Int(1, 5)}), "halving budget"),
    (dict(sampler="bayes"), "sampler must be one of"),
    (dict(budget=0), "budget must be an int >= 1"),
    (dict(eta=1), "eta must be an int >= 2"),
    (dict(validation="random:1.5"), r"fraction must be a number in \(0, 1\)"),
    (dict(validation="kfold:1"), "K must be an int >= 2"),
    (dict(validation="holdout"), "validation must be"),
    (dict(metric="auc"), "unknown eval metric"),
    (dict(max_epochs=0), "max_epochs must be an int >= 1"),
    (dict(min_epochs=20, max_epochs=10), "min_epochs=20 is more than max_epochs=10"),
    (dict(n_jobs=0), "n_jobs must be"),
    (dict(n_jobs=64), "more than the"),
])
def test_bad_arguments_raise_value_errors(small, kwargs, match):
    args = dict(space={"reg": FloatLog(0.01, 0.1)}, budget=2, max_epochs=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        search("mf", data=small, **args)


def test_threads_times_jobs_above_the_cores_raise(small):
    from fastmf._validation import resolve_n_threads

    cores = resolve_n_threads(None)
    with pytest.raises(ValueError, match=f"n_jobs={cores} x n_threads=2"):
        search(fastmf.MatrixFactorization(n_threads=2), {"reg": FloatLog(0.01, 0.1)}, small, budget=2,
               max_epochs=2, n_jobs=cores)


def test_unknown_model_name_is_a_key_error(small):
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        search("nope", data=small)


def test_one_pass_models_take_no_epochs(small):
    with pytest.raises(ValueError, match="one pass"):
        search("popularity", None, small, max_epochs=3)
    found = search("globalmean", None, small)  # nothing to search: one trial
    assert len(found.records) == 1 and found.best_params_ == {}


def test_default_spaces_are_declared_for_every_model():
    for entry in registry.entries():
        spec = registry.search_spec(entry, entry.cls().get_params())
        model = entry.cls()
        from fastmf._space import check_space

        check_space(entry.key, spec.space, model.get_params(), model._constraints)
    als = fastmf.tune.default_space("als")
    assert "lr" not in als.space and als.max_budget == 20
    assert "lr" in fastmf.tune.default_space(fastmf.MatrixFactorization()).space


# ---------------------------------------------------------------------- honesty: the test split is never read
class _Spy(fastmf.Ratings):
    """A Ratings that fails the test the moment anything reads it while ``armed``."""

    armed = False

    def __getattribute__(self, name):
        if type(self).armed and not name.startswith("__"):
            raise AssertionError(f"the test split was read during the search ({name})")
        return super().__getattribute__(name)


def _spy_of(ratings):
    spy = _Spy.__new__(_Spy)
    for slot in fastmf.Ratings.__slots__:
        object.__setattr__(spy, slot, object.__getattribute__(ratings, slot))
    return spy


def _arming(monkeypatch, module, name):
    real = getattr(module, name)
    searched = []

    def armed_search(*args, **kwargs):
        _Spy.armed = True
        try:
            out = real(*args, **kwargs)
        finally:
            _Spy.armed = False
        searched.append(out)
        return out

    monkeypatch.setattr(module, name, armed_search)
    return searched


def test_compare_with_tuning_never_reads_the_test_split(small, monkeypatch):
    train, test = fastmf.split.random_split(small, test_size=0.2, random_state=0)
    spy = _spy_of(test)
    searched = _arming(monkeypatch, fastmf.tune, "search")
    table = fastmf.tune.compare(["biases", "popularity"], small, split=(train, spy), tune=3)
    assert len(searched) == 2  # both were searched, with the spy armed
    assert table[0]["rmse"] == pytest.approx(fastmf.evaluate(searched[0].best_model_, test)["rmse"])


def test_the_service_search_never_reads_the_test_split(small, monkeypatch):
    from fastmf.app import service

    real_split = service.split_data

    def spying_split(*args, **kwargs):
        train, test, text = real_split(*args, **kwargs)
        return train, _spy_of(test), text

    monkeypatch.setattr(service, "split_data", spying_split)
    searched = _arming(monkeypatch, fastmf.tune, "search")
    out = service.tune_model(small, "biases", budget=3)
    assert searched and out["test_metrics"]["rmse"] > 0


def test_the_spy_does_catch_a_read(small):
    spy = _spy_of(small)
    _Spy.armed = True
    try:
        with pytest.raises(AssertionError, match="test split was read"):
            len(spy.rating)
    finally:
        _Spy.armed = False


def test_tpe_continues_a_given_optuna_study(small):
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
    found = search("biases", None, small, budget=9, sampler="tpe", study=study)
    assert len(study.trials) == 9
    told = sorted(t.value for t in study.trials)
    assert told[0] == pytest.approx(min(r["rmse"] for r in found.records))
