"""Compiler test fixtures."""

from __future__ import annotations

import pytest

import archspec


@pytest.fixture
def inplace_gradients_agree():
    """A check: the spec at `path`, lowered with its in-place ops, computes on input `x` the gradients (of the
    input and every parameter) that the out-of-place lowering computes. Returns both modules."""
    def check(path, x):
        torch = pytest.importorskip("torch")
        from archspec.compiler.lower import lower

        fast = archspec.build(path)
        slow = lower(archspec.compile(path), inplace=False)
        slow.load_state_dict(fast.state_dict())
        grads = []
        for model in (fast, slow):
            xi = x.clone().requires_grad_()
            model(xi).square().sum().backward()
            grads.append([xi.grad] + [p.grad for p in model.parameters()])
        for a, b in zip(*grads):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
        return fast, slow
    return check
