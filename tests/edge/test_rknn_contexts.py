"""RKNN contexts: one per thread, core masks round-robin, failures name the graph and the code."""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from workers.edge.model_folder import open_edge_model
from workers.edge.rknn_contexts import RknnContexts
from workers.edge.rknn_graph import RknnError
from workers.edge.rknnlite_standin import RKNNLite


def in_threads(count: int, target) -> list:
    """Run ``target()`` in ``count`` threads at once; results (or exceptions) in thread order."""
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def loaded(contexts: RknnContexts, model):
    """The calling thread's pipeline on ``model``, as a job gets it."""
    with contexts.session(model) as pipeline:
        return pipeline


@pytest.fixture
def model(tiny_lcm_rknn):
    return open_edge_model(tiny_lcm_rknn, "rknn")


def test_each_thread_gets_its_own_context_on_the_next_core(model):
    contexts = RknnContexts(num_workers=3, use_context_cfgs=True)
    pipelines = in_threads(3, lambda: loaded(contexts, model))
    assert len({id(p) for p in pipelines}) == 3
    bound = contexts.contexts()
    assert sorted(c.core_mask for c in bound) == [RKNNLite.NPU_CORE_0, RKNNLite.NPU_CORE_1, RKNNLite.NPU_CORE_2]
    for context in bound:
        assert {g.context.core_mask for g in context.graphs.values()} == {context.core_mask}
    runtimes = [id(g.context) for c in bound for g in c.graphs.values()]
    assert len(set(runtimes)) == 9, "one RKNNLite per graph per context, none shared"
    assert contexts.close() == 9
    assert all(not c.graphs for c in contexts.contexts())


def test_a_thread_keeps_its_context(model):
    contexts = RknnContexts(num_workers=2, use_context_cfgs=True)
    first = loaded(contexts, model)
    assert loaded(contexts, model) is first
    assert len(contexts.contexts()) == 1
    contexts.close()


def test_masks_repeat_past_three_and_auto_without_context_cfgs(model):
    contexts = RknnContexts(num_workers=4, use_context_cfgs=True)
    assert [contexts.core_mask(i) for i in range(4)] == [1, 2, 4, 1]
    auto = RknnContexts(num_workers=2, use_context_cfgs=False)
    in_threads(2, lambda: loaded(auto, model))
    assert [c.core_mask for c in auto.contexts()] == [RKNNLite.NPU_CORE_AUTO] * 2
    auto.close()


def test_more_threads_than_num_workers_is_an_error_not_a_shared_context(model):
    contexts = RknnContexts(num_workers=2, use_context_cfgs=True)
    results = in_threads(3, lambda: loaded(contexts, model))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], RknnError)
    assert "NUM_WORKERS=2" in str(errors[0])
    contexts.close()


def test_load_failure_names_graph_and_code_and_the_context_recovers(tmp_path, tiny_lcm_rknn):
    broken = shutil.copytree(tiny_lcm_rknn, tmp_path / "broken")
    (broken / "unet" / "model.rknn").write_bytes(b"RKNN\x00truncated")
    contexts = RknnContexts(num_workers=1, use_context_cfgs=True)
    with pytest.raises(RknnError, match=r"RKNN graph 'unet' .*load_rknn returned -1"):
        loaded(contexts, open_edge_model(broken, "rknn"))
    assert contexts.contexts()[0].graphs == {}, "the text encoder loaded before the failure was released"
    assert loaded(contexts, open_edge_model(tiny_lcm_rknn, "rknn")) is not None
    contexts.close()


def test_init_failure_names_graph_mask_and_code(tmp_path, tiny_lcm_rknn):
    broken = shutil.copytree(tiny_lcm_rknn, tmp_path / "broken")
    (broken / "vae_decoder" / "model.onnx").unlink()
    (broken / "vae_decoder" / "model.onnx").write_bytes(b"garbage")
    contexts = RknnContexts(num_workers=1, use_context_cfgs=True)
    with pytest.raises(RknnError, match=r"RKNN graph 'vae_decoder' .*init_runtime\(core_mask=1\) returned -1"):
        loaded(contexts, open_edge_model(broken, "rknn"))


def test_inference_none_names_the_graph(model):
    contexts = RknnContexts(num_workers=1, use_context_cfgs=True)
    graph = loaded(contexts, model).graphs["text_encoder"]
    with pytest.raises(RknnError, match=r"RKNN graph 'text_encoder' .*inference returned None"):
        graph.run({"input_ids": np.zeros((1, 76), dtype=np.int32)})
    assert graph.run({"input_ids": np.zeros((1, 77), dtype=np.int32)})[0].shape == (1, 77, 768)
    contexts.close()


def test_load_all_puts_the_model_in_every_context_on_its_core(model):
    contexts = RknnContexts(num_workers=3, use_context_cfgs=True)
    contexts.load_all(model)
    bound = contexts.contexts()
    assert [c.core_mask for c in bound] == [RKNNLite.NPU_CORE_0, RKNNLite.NPU_CORE_1, RKNNLite.NPU_CORE_2]
    assert all(c.model_root == model.root and c.model_bytes == model.graph_bytes() > 0 for c in bound)
    before = {id(c.pipeline) for c in bound}
    pipelines = in_threads(3, lambda: loaded(contexts, model))
    assert {id(p) for p in pipelines} == before, "the job threads found the model loaded"
    contexts.close()


def test_load_all_waits_for_the_running_job_then_replaces_its_model(model, tiny_lcm_rknn, tmp_path):
    """The switch loads only once the job has left its session; the job sees its own model to the end.

    The job stays in its session until the switch starts loading or a deadline passes: a switch
    that did not wait would load while the job runs and be recorded before the job's end."""
    other = open_edge_model(shutil.copytree(tiny_lcm_rknn, tmp_path / "other"), "rknn")
    contexts = RknnContexts(num_workers=2, use_context_cfgs=True)
    in_job, switch_loading = threading.Event(), threading.Event()
    events: list[str] = []
    job_saw: list = []

    def job() -> None:
        with contexts.session(model) as pipeline:
            in_job.set()
            switch_loading.wait(timeout=1.0)
            job_saw.append(pipeline.model.root)
            events.append("job ends")

    def check(new_model, contexts_to_load: int, held_bytes: int) -> None:
        events.append("switch loads")
        switch_loading.set()

    runner = threading.Thread(target=job)
    runner.start()
    assert in_job.wait(timeout=30)
    switch = threading.Thread(target=contexts.load_all, args=(other, check))
    switch.start()
    runner.join()
    switch.join()
    assert events == ["job ends", "switch loads"]
    assert job_saw == [model.root]
    assert [c.model_root for c in contexts.contexts()] == [other.root, other.root]
    contexts.close()
