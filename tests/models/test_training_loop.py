"""The one epoch loop (fastmf.training): the same history schema, eval metrics of any evaluate key
and early stopping on any of them, for every iterative model."""

import numpy as np
import pytest

import fastmf
from fastmf.training import DivergenceError, metric_direction


@pytest.fixture(scope="module")
def split():
    ds = fastmf.make_ratings(300, 200, 6000, seed=3)
    return fastmf.split.random_split(ds, test_size=0.2, random_state=0)


MODELS = {
    "sgd": lambda **kw: fastmf.MatrixFactorization(n_factors=8, n_epochs=12, random_state=0, **kw),
    "als": lambda **kw: fastmf.MatrixFactorization(n_factors=8, n_epochs=6, solver="als",
                                                   random_state=0, **kw),
    "ials": lambda **kw: fastmf.ImplicitALS(n_factors=8, n_epochs=6, random_state=0, **kw),
}


@pytest.mark.parametrize("key", MODELS)
def test_history_schema_is_shared(key, split):
    train, test = split
    metrics = ("ndcg@5", "recall@10") if key == "ials" else ("rmse", "ndcg@5")
    m = MODELS[key]().fit(train, eval_set=test, eval_metrics=metrics)
    for n, entry in enumerate(m.history_, 1):
        assert entry["epoch"] == n
        assert [k for k in entry if k.startswith("eval_")] == [f"eval_{x}" for x in metrics]
        assert any(k.startswith("train_") for k in entry)
        assert entry["seconds"] >= 0
    assert m.best_epoch_ == len(m.history_)
    # the loop's ranking metric is fastmf.evaluate's on the final model
    last = m.history_[-1]
    assert last["eval_ndcg@5"] == pytest.approx(fastmf.evaluate(m, test, k=5)["ndcg@5"])


@pytest.mark.parametrize("key", MODELS)
def test_early_stopping_on_a_ranking_metric_restores_the_best_epoch(key, split):
    train, test = split
    model = MODELS[key]()
    model.fit(train, eval_set=test, early_stopping="ndcg@5", early_stopping_rounds=2,
              eval_metrics=("ndcg@5",))
    values = [e["eval_ndcg@5"] for e in model.history_]
    best = int(np.argmax(values)) + 1
    assert model.best_epoch_ == best
    # stopped no later than 2 epochs after the best, or ran to the end
    assert len(values) == best + 2 or len(values) == model._resolved_n_epochs()
    # the model holds the best epoch's parameters: its ndcg is the best one recorded
    assert fastmf.evaluate(model, test, k=5)["ndcg@5"] == pytest.approx(values[best - 1])


def test_mf_early_stopping_watches_rmse_by_default(split):
    train, test = split
    m = fastmf.MatrixFactorization(n_factors=8, n_epochs=30, lr=0.05, random_state=0)
    m.fit(train, eval_set=test, early_stopping_rounds=1)
    rmse = [e["eval_rmse"] for e in m.history_]
    assert m.best_epoch_ == int(np.argmin(rmse)) + 1


@pytest.mark.parametrize("bad, match", [
    ("ndcg", "unknown eval metric"), ("ndcg@0", "unknown eval metric"), ("auc", "unknown eval metric")])
def test_bad_metric_names_fail_before_training(bad, match, split):
    train, test = split
    with pytest.raises(ValueError, match=match):
        MODELS["sgd"]().fit(train, eval_set=test, early_stopping=bad, early_stopping_rounds=2)
    with pytest.raises(ValueError, match=match):
        MODELS["sgd"]().fit(train, eval_set=test, eval_metrics=(bad,))


def test_rating_metric_of_a_ranking_model_is_refused(split):
    train, test = split
    with pytest.raises(ValueError, match="needs a model that predicts ratings"):
        MODELS["ials"]().fit(train, eval_set=test, early_stopping="rmse", early_stopping_rounds=2)


def test_early_stopping_metric_needs_rounds(split):
    train, test = split
    with pytest.raises(ValueError, match="early_stopping_rounds"):
        MODELS["sgd"]().fit(train, eval_set=test, early_stopping="ndcg@10")


def test_divergence_is_one_error_type(split):
    train, _ = split
    with pytest.raises(DivergenceError, match="training diverged in epoch 1 \\(lr=1000"):
        fastmf.MatrixFactorization(lr=1000.0, n_epochs=3, random_state=0).fit(train)
    assert DivergenceError is fastmf.mf.DivergenceError


def test_metric_direction():
    assert metric_direction("rmse") == -1 and metric_direction("mae") == -1
    assert metric_direction("ndcg@10") == 1 and metric_direction("hit_rate@3") == 1


class RecordingTrainer(fastmf.training.Trainer):
    """A trainer that moves MF's factors by a scripted amount each epoch, and records the calls."""

    def __init__(self, model, scale, fail_at=None):
        self.model, self.scale, self.fail_at = model, scale, fail_at
        self.state = (model.user_factors_, model.item_factors_)
        self.calls = []
        self.start_factors = model.user_factors_.copy()

    def start(self):
        self.calls.append("start")

    def epoch(self, n):
        self.calls.append(n)
        if n == self.fail_at:
            raise FloatingPointError("factor row 3 is nan")
        self.model.user_factors_[...] = self.start_factors * self.scale(n)
        return {"train_rmse": float(n)}

    def finish(self):
        self.calls.append("finish")

    def describe(self, exc):
        return f" (scripted): {exc}"


def test_a_trainer_is_started_run_and_finished_and_its_state_restored(split):
    train, valid = split
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0, ranking="rating").fit(train)
    # epoch 2 keeps the factors; every other epoch wrecks them: early stopping must restore epoch 2's
    trainer = RecordingTrainer(model, lambda n: 1.0 if n == 2 else 50.0 * n)
    fastmf.training.run_epochs(model, trainer, 10, eval_set=valid, eval_metrics=["rmse"], watched="rmse",
                               early_stopping_rounds=2)
    assert trainer.calls == ["start", 1, 2, 3, 4, "finish"]
    assert model.best_epoch_ == 2 and [h["epoch"] for h in model.history_] == [1, 2, 3, 4]
    assert np.array_equal(model.user_factors_, trainer.start_factors)
    assert model.history_[0].keys() == {"epoch", "train_rmse", "eval_rmse", "seconds"}


def test_a_failing_trainer_is_finished_and_described(split):
    train, _ = split
    model = fastmf.MatrixFactorization(n_factors=4, n_epochs=3, random_state=0).fit(train)
    trainer = RecordingTrainer(model, lambda n: 1.0, fail_at=2)
    with pytest.raises(DivergenceError, match=r"^MatrixFactorization: training diverged in epoch 2 "
                                              r"\(scripted\): factor row 3 is nan$"):
        fastmf.training.run_epochs(model, trainer, 5)
    assert trainer.calls == ["start", 1, 2, "finish"]
    with pytest.raises(TypeError, match="belong to the Trainer"):
        fastmf.training.run_epochs(model, trainer, 1, state=())
