"""knn (chunked torch) and knn_faiss against a brute-force NumPy reference."""
import numpy as np
import pytest
import torch

from poisonkit.attribution.knn import knn, knn_faiss


def unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(q, keys, k, key_labels=None, query_classes=None):
    """Every cosine, sorted descending (float64), optionally only keys of the query's class."""
    s = q.astype(np.float64) @ keys.astype(np.float64).T
    if key_labels is not None:
        s = np.where(key_labels[None, :] == query_classes[:, None], s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), order


@pytest.mark.parametrize("n,q,d,k,qc,kc", [(1000, 37, 16, 10, 1024, 8192), (1000, 37, 16, 10, 5, 97),
                                           (513, 3, 64, 513, 2, 100), (200, 50, 8, 1, 7, 13)])
def test_exact_knn_equals_brute_force(n, q, d, k, qc, kc):
    rng = np.random.default_rng(n + q + k)
    keys, queries = unit(rng, n, d), unit(rng, q, d)
    s_ref, i_ref = brute_force(queries, keys, k)
    s, i = knn(torch.from_numpy(queries), torch.from_numpy(keys), k, query_chunk=qc, key_chunk=kc)
    np.testing.assert_array_equal(i.numpy(), i_ref)
    np.testing.assert_allclose(s.numpy(), s_ref, atol=1e-5)


def test_faiss_equals_brute_force():
    rng = np.random.default_rng(1)
    keys, queries = unit(rng, 3000, 32), unit(rng, 40, 32)
    s_ref, i_ref = brute_force(queries, keys, 25)
    memmap_like = keys  # any [N, D] array-like, added in chunks
    s, i = knn_faiss(queries, memmap_like, 25, key_chunk=700)
    np.testing.assert_array_equal(i.numpy(), i_ref)
    np.testing.assert_allclose(s.numpy(), s_ref, atol=1e-5)


@pytest.mark.parametrize("method", ["exact", "faiss"])
def test_restriction_to_the_predicted_class(method):
    rng = np.random.default_rng(2)
    keys, queries = unit(rng, 600, 12), unit(rng, 30, 12)
    key_labels, query_classes = rng.integers(0, 5, 600), rng.integers(0, 5, 30)
    s_ref, i_ref = brute_force(queries, keys, 7, key_labels, query_classes)
    if method == "exact":
        s, i = knn(torch.from_numpy(queries), torch.from_numpy(keys), 7, torch.from_numpy(key_labels),
                   torch.from_numpy(query_classes), key_chunk=50)
    else:
        s, i = knn_faiss(queries, keys, 7, key_labels, query_classes)
    np.testing.assert_array_equal(i.numpy(), i_ref)
    np.testing.assert_allclose(s.numpy(), s_ref, atol=1e-5)
    assert (key_labels[i.numpy()] == query_classes[:, None]).all()


def test_bad_arguments_name_the_argument():
    keys, queries = torch.randn(10, 4), torch.randn(2, 4)
    with pytest.raises(ValueError, match="k: 11 neighbours.*holds 10"):
        knn(queries, keys, 11)
    with pytest.raises(ValueError, match="k: 11 neighbours"):
        knn_faiss(queries.numpy(), keys.numpy(), 11)
    with pytest.raises(ValueError, match="k: expected a positive int"):
        knn(queries, keys, 0)
    with pytest.raises(ValueError, match="queries / keys"):
        knn(queries, torch.randn(10, 5), 3)
    labels = torch.tensor([0] * 9 + [1])
    with pytest.raises(ValueError, match=r"k: 2 .*class\(es\) \[1\]"):
        knn(queries, keys, 2, labels, torch.tensor([0, 1]))


@pytest.mark.requires_cuda
def test_exact_knn_on_the_gpu_equals_brute_force():
    rng = np.random.default_rng(3)
    keys, queries = unit(rng, 5000, 64), unit(rng, 300, 64)
    s_ref, i_ref = brute_force(queries, keys, 20)
    s, i = knn(torch.from_numpy(queries), torch.from_numpy(keys), 20, key_chunk=999, device="cuda")
    np.testing.assert_array_equal(i.numpy(), i_ref)
    np.testing.assert_allclose(s.numpy(), s_ref, atol=1e-4)
