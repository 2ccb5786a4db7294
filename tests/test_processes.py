"""CPU-bound work runs BLAS on one thread, here and in the spawned pools."""
import pytest
from threadpoolctl import threadpool_info

from heatmaploc.processes import bounded_map, single_threaded, single_threaded_pool


def blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_single_threaded_limits_blas_here_and_restores_it():
    before = blas_threads()
    with single_threaded():
        assert blas_threads() and set(blas_threads()) == {1}
    assert blas_threads() == before


@pytest.mark.parametrize("fork", [False, True])
def test_pool_workers_run_single_threaded_blas(fork):
    with single_threaded_pool(2, fork=fork) as pool:
        answers = [pool.submit(blas_threads).result() for _ in range(2)]
    assert all(a and set(a) == {1} for a in answers)


def test_bounded_map_yields_in_order_and_submits_only_a_few_items_ahead():
    from concurrent.futures import ThreadPoolExecutor

    submitted = []

    def items():
        for i in range(40):
            submitted.append(i)
            yield i

    with ThreadPoolExecutor(3) as pool:
        results = []
        for value in bounded_map(pool, lambda i: i * i, items(), ahead=5):
            assert len(submitted) - len(results) <= 5  # submitted but not yet yielded
            results.append(value)
    assert results == [i * i for i in range(40)]
