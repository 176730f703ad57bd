"""The optimiser base class, its hyperparameter declarations and the registry.

An optimiser owns everything about itself, in one class of one file of this package:

- its maths, as pure functions with ``out=`` at the top of its module, called by both
  the in-place :meth:`Optimizer.step` that ``fit`` uses and the node rules of the
  traced step (so the two are one code path);
- its **node declarations** for the step graph (:meth:`Optimizer.update_nodes`) and the
  state a step carries to the next (:meth:`Optimizer.carried`);
- its symbols, words and why for ``explain`` (:meth:`Optimizer.symbols`,
  :meth:`Optimizer.words`, :meth:`Optimizer.why`);
- its mistake alternatives for ``check`` (:meth:`Optimizer.alternatives`);
- its hyperparameters, declared once in ``fields`` (:class:`Field`): the constructor,
  :meth:`Optimizer.from_spec` and :func:`optimizer_from_config` all validate from them;
- what another engine needs (:meth:`Optimizer.torch_spec`).

Parameters in the in-place path are a list ``[W1, b1, W2, b2, ...]``; state lives in
``state[name][i]``, arrays shaped like parameter i.  ``fit``'s NumPy engine lays the
parameters, their gradients and this state out end to end instead
(:class:`glassnet.optimizers.flat.FlatParameters`, :meth:`Optimizer.step_flat`): the
same rule on whole buffers, ``state[name][i]`` then views of them.  Weight decay
applies to weight matrices and convolution kernels only (``p.ndim >= 2``), never to
biases or norm scales — scikit-learn's ``alpha`` convention; it is each layer's
``decayed`` set, and tests/test_layer_plugins.py holds every layer plugin to it.

Nodes of one parameter ``param`` (``"W"``, ``"b"``, ``"gamma"``) of layer ``l``: its value
is the leaf ``(param, l)``, its gradient the node ``("d" + param, l)``; the optimiser
declares its state leaves ``(f"{s}_{param}_prev", l)`` (zeros at the first step), its
update nodes ``(f"{s}_{param}", l)`` and finally ``(f"{param}_new", l)``.  With L2 weight
decay (λ > 0) the gradient a decayed parameter's rule uses is its own node
``(f"g_{param}", l)`` = d{param} + λ·{param}; a parameter that is not decayed (a bias)
uses d{param} directly.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.nodes import Key, NodeDecl, Rule, leaf, zeros_like_first
from glassnet.optimizers.schedules import Schedule

if TYPE_CHECKING:
    from glassnet.mathtree import Node, Sym
    from glassnet.optimizers.flat import FlatGroup, FlatParameters

Array = np.ndarray


# -- maths shared by every optimiser with L2 weight decay ---------------------------------
def l2_grad(grad: Array, param: Array, weight_decay: float, *, out: Array | None = None) -> Array:
    """L2 weight decay: ``grad + λ·param`` (any shape; ``out`` must not be ``grad``)."""
    g = np.multiply(param, weight_decay, out=out)
    g += grad
    return g


def l2_grad_into(grad: Array, param: Array, weight_decay: float, *, scratch: Array) -> Array:
    """L2 weight decay in place: ``grad ← grad + λ·param``, λ·param formed in ``scratch``.
    The same sum as :func:`l2_grad`'s ``λ·param + grad`` (addition commutes), bit for bit."""
    grad += np.multiply(param, weight_decay, out=scratch)
    return grad


def copy_first(ins: Sequence[Array]) -> Array:
    """A node equal to its one input (a fixed parameter's ``_new``, an undecayed ``g``)."""
    return np.array(ins[0], copy=True)


# -- hyperparameters, declared once ------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One hyperparameter: its name, type (``float`` or ``bool``), default and range.

    ``low``/``high`` bound a number (None: unbounded); ``low_open``/``high_open`` exclude
    the bound.  Every number must be finite.
    """

    name: str
    type: type
    default: float | bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    words: str = ""

    def expected(self) -> str:
        """What a value must be, as the error message says it."""
        if self.type is bool:
            return "true or false"
        if self.high is None:
            if self.low == 0:
                return "a positive finite number" if self.low_open else "a finite number ≥ 0"
            return "a finite number"
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        return f"a number in {lo}{self.low:g}, {self.high:g}{hi}"

    def check(self, value: Any) -> float | bool:
        """``value`` as this field's type, or a one-line :class:`GlassnetError`."""
        if self.type is bool:
            if not isinstance(value, bool | np.bool_):
                raise GlassnetError(f"expected {self.expected()}", got=repr(value), field=self.name)
            return bool(value)
        ok = (
            not isinstance(value, bool | np.bool_)
            and isinstance(value, int | float | np.integer | np.floating)
            and math.isfinite(value)
        )
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.high_open else value <= self.high
        if not ok:
            raise GlassnetError(f"expected {self.expected()}", got=repr(value), field=self.name)
        return float(value)


def lr_field(default: float) -> Field:
    return Field("lr", float, default, 0.0, None, low_open=True, words="the learning rate")


def weight_decay_field(default: float = 0.0, words: str = "L2 weight decay λ") -> Field:
    return Field("weight_decay", float, default, 0.0, None, words=words)


# -- symbols (explain) -------------------------------------------------------------------
def hyper(name: str, value: float) -> Sym:
    """A hyperparameter's symbol, carrying its value (so numbers can be put in)."""
    from glassnet.mathtree import Sym

    base, sub = {
        "lr": ("lr", ()),
        "beta1": ("β", (("1", "num"),)),
        "beta2": ("β", (("2", "num"),)),
        "eps": ("ε", ()),
        "momentum": ("μ", ()),
        "weight_decay": ("λ", ()),
        "rho": ("ρ", ()),
    }[name]
    return Sym(base, sub, value=value)


#: The L2-decayed gradient's words and why, shared by every optimiser with L2 decay.
_L2_WORDS = {
    "g": "The gradient the update uses: with L2 weight decay, the loss's gradient plus λ "
    "times the weight (a parameter that is not decayed, such as a bias, keeps its gradient).",
}
_L2_WHY = {
    "g": "L2 weight decay adds (λ/2)·‖W‖² to the loss; its derivative with respect to W is "
    "λ·W, so the gradient becomes ∂L/∂W + λ·W.  Biases are not decayed (as in "
    "scikit-learn): shrinking them does not make the function smoother.",
}


# -- the optimiser -----------------------------------------------------------------------
class Optimizer:
    """Base class.  A subclass declares ``name``, ``fields``, ``state_names``, writes its
    maths as functions with ``out=`` and calls them from ``_rule`` (in place, for
    ``fit``: one parameter, or every parameter laid end to end) and from
    ``_update_decls`` (the traced step's node rules)."""

    #: The name specs, model files and the CLI use.
    name: ClassVar[str] = ""
    #: One line for explain and docs ("Adam (Kingma & Ba, 2015)").
    title: ClassVar[str] = ""
    #: Its hyperparameters, declared once (constructor, spec, config validate from it).
    fields: ClassVar[tuple[Field, ...]] = ()
    #: Names of the per-parameter state arrays (each shaped like its parameter).
    state_names: ClassVar[tuple[str, ...]] = ()
    #: What ``torch.optim``'s class of :meth:`torch_spec` calls each of
    #: ``state_names`` in its per-parameter state (Adam's ``m`` is ``exp_avg``): how a
    #: PyTorch engine hands the state over and back (checkpoints, resume).
    torch_state: ClassVar[dict[str, str]] = {}
    #: True when ``weight_decay`` is L2 (added to the gradient); AdamW's is decoupled.
    l2_decay: ClassVar[bool] = True
    #: L2 weight decay λ; 0 for an optimiser that declares no ``weight_decay`` field.
    weight_decay: float = 0.0
    #: True when the rule is element-wise: each number of a parameter moves from its own
    #: gradient and state and from scalars shared by all (lr, β, the step count), never
    #: from a whole parameter (a norm, a layer's trust ratio).  Then ``_rule`` may run
    #: on every parameter laid end to end in one buffer (:meth:`step_flat`) and give
    #: each number what it gives parameter by parameter.  An optimiser that is not sets
    #: False and is always stepped parameter by parameter.
    elementwise: ClassVar[bool] = True
    #: For explain: the letter of a role's symbol where it is not the role's name
    #: (``{"velocity": "v"}``); ``{param}`` stands for the parameter's name.
    role_symbols: ClassVar[dict[str, str]] = {}
    #: For explain: one sentence per role (node kind without its parameter).
    role_words: ClassVar[dict[str, str]] = {}
    #: For explain: why a role's rule is what it is.
    role_why: ClassVar[dict[str, str]] = {}

    lr: float

    def __init__(self, *, schedule: Schedule | None = None, **values: Any) -> None:
        known = [f.name for f in self.fields]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise GlassnetError(
                f"expected options of {self.name} ({', '.join(known)})",
                got=", ".join(unknown),
                field="optimizer",
            )
        for f in self.fields:
            setattr(self, f.name, f.check(values.get(f.name, f.default)))
        if schedule is not None and not isinstance(schedule, Schedule):
            raise GlassnetError(
                "expected a schedule (StepLR, CosineLR) or None",
                got=repr(schedule),
                field="schedule",
            )
        self.schedule = schedule
        #: Steps taken so far (Adam's t).
        self.t = 0
        #: The rate in use this epoch (``lr`` times the schedule's factor).
        self.current_lr = self.lr
        self.state: dict[str, list[Array]] = {}
        # Scratch buffers, one per parameter, so the update allocates nothing.
        self._tmp: list[Array] = []
        self._decayed: list[Array] = []
        # The state laid out flat for step_flat (None until its first call).
        self._flat: _FlatState | None = None

    def __getstate__(self) -> dict[str, Any]:
        # A copy (copy.deepcopy: --check-first-step's reference step) gets its state as
        # arrays of its own, not views of this one's buffers: it lays them out again.
        state = self.__dict__.copy()
        state["_flat"] = None
        return state

    # -- the in-place step (fit) -------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Apply the schedule for ``epoch`` (from 0)."""
        factor = self.schedule.factor(epoch) if self.schedule is not None else 1.0
        self.current_lr = self.lr * factor

    def step(self, params: list[Array], grads: list[Array], *, scratch_grads: bool = False) -> None:
        """Update every parameter in place from its gradient: ``params`` flat,
        ``[W1 (n_in, n_out), b1 (n_out,), W2, b2, ...]``, ``grads`` shaped alike (any
        shapes in fact; a parameter is decayed when it has 2 or more axes).  The grads
        are left unchanged unless ``scratch_grads``: then an optimiser may overwrite them
        (the training loop's buffers, refilled every step), which spares streaming one
        more array through the cache.  The updated parameters are the same either way."""
        if not self._tmp:
            self._allocate(params)
        self.t += 1
        lr = self.current_lr
        decay = self.weight_decay
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            scratch = scratch_grads
            if decay and p.ndim >= 2:  # the layers' ``decayed``: weights and kernels
                g, scratch = self._decay(i, p, g, lr, scratch)
            self._update(i, p, g, lr, scratch)

    @property
    def steps_flat(self) -> bool:
        """Whether :meth:`step_flat` runs the rule on whole buffers: the rule is
        element-wise (:attr:`elementwise`) and written as :meth:`_rule` (an optimiser
        that writes only the older per-parameter hook :meth:`_update` is stepped
        parameter by parameter, on the same views)."""
        return self.elementwise and type(self)._rule is not Optimizer._rule

    def step_flat(self, flat: FlatParameters) -> None:
        """:meth:`step` on every parameter of ``flat`` at once, with its gradients
        ``flat.grads`` (the training loop's buffers, refilled every step: overwritten
        here): per buffer, weight decay on its decayed slice, then ``_rule`` on the
        whole buffer — a few passes in all, whatever the number of parameters.  The
        state is laid out like the parameters (``state[name][i]`` views of it; a state
        held as separate arrays — a resumed or continued fit, a restore — is copied in
        first).  For an element-wise rule (:attr:`elementwise`) the same operations on
        the same numbers as :meth:`step` with ``scratch_grads``: the same results, bit
        for bit (tests/test_flat_params.py)."""
        if not self.steps_flat:
            self.step(flat.params, flat.grads, scratch_grads=True)
            return
        laid = self._flat_state(flat)
        self.t += 1
        lr = self.current_lr
        decay = self.weight_decay
        for group, state, tmp in laid.groups:
            p, g = group.params, group.grads
            n = group.n_decayed
            if decay and n:
                self._decay_flat(p[:n], g[:n], tmp[:n], lr)
            self._rule(p, g, state, tmp, lr, True)

    @property
    def flat_layout(self) -> FlatParameters | None:
        """The layout this optimiser's state is laid out for by :meth:`step_flat`
        (None: not laid out): an engine beginning another fit of the same network
        reuses it (:meth:`FlatParameters.of_layers`), copying nothing again."""
        return self._flat.layout if self._flat is not None else None

    def _flat_state(self, flat: FlatParameters) -> _FlatState:
        """The state laid out as ``flat``'s parameters: the one made at the last call
        while ``self.state`` is still its views, else made now (zeros before the first
        step, else the current state copied in)."""
        laid = self._flat
        if (
            laid is not None
            and laid.layout is flat
            and self.state is laid.state
            and all(self.state[n] is laid.lists[n] for n in self.state_names)
        ):
            return laid
        old = self.state
        groups, lists = [], {}
        buffers = {n: [g.zeros() for g in flat.groups] for n in self.state_names}
        for n in self.state_names:
            lists[n] = flat.views_of(buffers[n])
            if old:
                for i, (view, a) in enumerate(zip(lists[n], old[n], strict=True)):
                    if a.shape != view.shape:
                        raise GlassnetError(
                            f"expected optimiser state '{n}.{i}' shaped {view.shape}",
                            got=f"shape {a.shape}",
                            field="optimizer",
                        )
                    view[...] = a
        for k, group in enumerate(flat.groups):
            state = {n: buffers[n][k] for n in self.state_names}
            groups.append((group, state, group.zeros()))
        self.state = dict(lists)
        laid = _FlatState(flat, self.state, dict(lists), groups)
        self._flat = laid
        return laid

    def _decay_flat(self, p: Array, g: Array, tmp: Array, lr: float) -> None:
        """Weight decay on the decayed slice of a flat buffer before the rule: L2,
        ``g ← g + λ·p`` in the gradient buffer itself (refilled every step), the same
        sum as :meth:`_decay` forms apart."""
        l2_grad_into(g, p, self.weight_decay, scratch=tmp)

    def linear_update(self) -> tuple[float, float] | None:
        """(α, β) when this step's update of every parameter is ``p ← β·p + α·g`` —
        β for a parameter weight decay applies to, 1 for the others — and nothing else
        (no state, nothing from g but g itself): plain SGD.  An engine may then do the
        update inside the multiply that forms g (BLAS gemm's α and β) with no gradient
        array and no update pass, then call :meth:`count_step`.  None (the default):
        the rule needs g itself (momentum's velocity, Adam's moments)."""
        return None

    def count_step(self) -> None:
        """Count a step whose update an engine did through :meth:`linear_update`."""
        self.t += 1

    def _decay(self, i: int, p: Array, g: Array, lr: float, scratch: bool) -> tuple[Array, bool]:
        """Weight decay before the rule: L2, ``g + λW`` built in a scratch buffer so the
        caller's gradient stays as it was.  Returns the gradient to use and whether it may
        be overwritten."""
        return l2_grad(g, p, self.weight_decay, out=self._decayed[i]), True

    def _update(self, i: int, p: Array, g: Array, lr: float, g_is_scratch: bool) -> None:
        """Update parameter i, p, in place (:meth:`_rule` with its state);
        ``g_is_scratch``: g may be overwritten."""
        state = {name: self.state[name][i] for name in self.state_names}
        self._rule(p, g, state, self._tmp[i], lr, g_is_scratch)

    def _rule(
        self,
        p: Array,
        g: Array,
        state: Mapping[str, Array],
        tmp: Array,
        lr: float,
        g_is_scratch: bool,
    ) -> None:
        """The update rule, in place: p and its ``state`` (by ``state_names``, shaped
        like p) from the gradient g; ``tmp`` a scratch array shaped like p;
        ``g_is_scratch``: g may be overwritten.  One parameter, or all of them laid end
        to end (:meth:`step_flat`): any shape, so element-wise throughout when
        :attr:`elementwise`."""
        raise NotImplementedError

    def _allocate(self, params: list[Array]) -> None:
        if not self.state:
            self.state = {name: [np.zeros_like(p) for p in params] for name in self.state_names}
        self._tmp = [np.empty_like(p) for p in params]
        l2 = self.weight_decay and self.l2_decay
        self._decayed = [np.empty_like(p) for p in params] if l2 else []

    # -- the traced step's nodes -------------------------------------------------------
    def update_nodes(
        self, param: str, layer: int, *, t: int, decay: bool, fixed: bool = False
    ) -> list[NodeDecl]:
        """The nodes updating ``param`` of ``layer`` at step ``t`` (1-based), in the order
        a derivation meets them: the state leaves ``(f"{s}_{param}_prev", layer)`` (zeros
        at the first step), then the update nodes (phase ``"update"``) ending with
        ``(f"{param}_new", layer)``.  ``decay``: whether weight decay applies to this
        parameter (weights yes, biases no).  ``fixed``: the parameter is held (a spec's
        fixed biases): the one node ``{param}_new``, a copy, and no state."""
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise GlassnetError("expected a step number ≥ 1", got=repr(t), field="t")
        if fixed:
            return [NodeDecl(f"{param}_new", layer, ((param, layer),), copy_first, "update")]
        state = [
            leaf(f"{s}_{param}_prev", layer, initial=zeros_like_first, like=[(param, layer)])
            for s in self.state_names
        ]
        return state + self._update_decls(param, layer, t=t, decay=decay)

    def _update_decls(self, param: str, layer: int, *, t: int, decay: bool) -> list[NodeDecl]:
        raise NotImplementedError

    def carried(self, param: str, *, fixed: bool = False) -> list[tuple[str, str]]:
        """The state a step hands to the next: (kind computed this step, the next step's
        leaf kind), e.g. ``("m_W", "m_W_prev")``.  Nothing for a fixed parameter."""
        if fixed:
            return []
        return [(f"{s}_{param}", f"{s}_{param}_prev") for s in self.state_names]

    def _grad_node(self, param: str, layer: int, decay: bool) -> tuple[list[NodeDecl], Key]:
        """The gradient the rule uses: ``d{param}``, or with L2 decay (λ > 0) of a decayed
        parameter the node ``g_{param}`` = d{param} + λ·{param}."""
        grad: Key = ("d" + param, layer)
        if not (decay and self.weight_decay and self.l2_decay):
            return [], grad
        wd = self.weight_decay
        rule: Rule = lambda ins: l2_grad(ins[0], ins[1], wd)  # noqa: E731
        node = NodeDecl(f"g_{param}", layer, (grad, (param, layer)), rule, "update")
        return [node], node.key

    # -- symbols, words, why (explain) -------------------------------------------------
    @classmethod
    def split(cls, kind: str, param: str | None = None) -> tuple[str, str]:
        """(role, param) of one of this optimiser's node kinds: ``"m_hat_W"`` →
        ``("m_hat", "W")``, ``"W_new"`` → ``("new", "W")``, ``"m_W_prev"`` →
        ``("m_prev", "W")``.  A role is a key of ``role_words``; with ``param`` given,
        the kind must be that parameter's."""
        if kind.endswith("_new"):
            found = ("new", kind.removesuffix("_new"))
        else:
            found = ("", "")
            prev = kind.endswith("_prev")
            stem = kind.removesuffix("_prev")
            roles = (
                set(cls.state_names)
                if prev
                else {r for r in (*cls.role_words, *_L2_WORDS) if not r.endswith("_prev")}
            )
            # The longest role first: "m_hat_W" is m_hat's, not m's.
            for role in sorted(roles, key=len, reverse=True):
                if stem.startswith(role + "_") and len(stem) > len(role) + 1:
                    found = (role + "_prev" if prev else role, stem.removeprefix(role + "_"))
                    break
        if not found[0] or (param is not None and found[1] != param):
            whose = f"{param}'s update under {cls.name}" if param else f"{cls.name}'s update"
            raise GlassnetError(f"expected a node kind of {whose}", got=repr(kind), field="kind")
        return found

    @classmethod
    def symbol(cls, kind: str, param: str, layer: int) -> Node:
        """A symbol for a quantity of one parameter's update, unvalued: ``W1`` (the leaf),
        ``∂L/∂W1`` (its gradient), ``W′1`` (updated), ``m_{W1,t}`` and ``m_{W1,t−1}``
        (state after and before this step), ``m̂_{W1}`` (another node)."""
        from glassnet.mathtree import Deriv, Sym

        at = ((str(layer), "num"),)
        if kind == param:
            return Sym(param, at)
        if kind == "d" + param:
            return Deriv(Sym("L"), Sym(param, at))
        role, _ = cls.split(kind, param)
        if role == "new":
            return Sym(param, at, prime=True)
        state = role.removesuffix("_prev")
        letter = cls.role_symbols.get(state, state)
        if "{param}" in letter:  # a form of the parameter itself (AdamW's decayed W̃1)
            return Sym(letter.format(param=param), at)
        own = ((param, "id"), (str(layer), "num"))
        if role.endswith("_prev"):
            return Sym(letter, (*own, (",", "txt"), ("t\u22121", "txt")))
        if role in cls.state_names:
            return Sym(letter, (*own, (",", "txt"), ("t", "id")))
        return Sym(letter, own)

    def symbols(
        self,
        kind: str,
        param: str,
        layer: int,
        inputs: Mapping[Key, Node] | Sequence[Node] | None = None,
        *,
        t: int | None = None,
        decay: bool = True,
        fixed: bool = False,
    ) -> Node | None:
        """The rule of node ``(kind, layer)`` of ``param``'s update in symbols, as a
        :mod:`glassnet.mathtree` expression (its right-hand side); None for a state leaf
        (given, not computed).  ``inputs``: the symbols to write for the node's inputs —
        by key, or a sequence in the declared order — valued ones, so that
        :func:`~glassnet.mathtree.substitute` puts the numbers in; an input not given gets
        :meth:`symbol`'s.  Hyperparameters carry their values; ``t``, the step, is put in
        for Adam's powers when given.  ``decay`` and ``fixed`` as for :meth:`update_nodes`."""
        role, _ = self.split(kind, param)
        decls = self.update_nodes(param, layer, t=t or 1, decay=decay, fixed=fixed)
        found = [d for d in decls if d.kind == kind]
        if not found:
            raise GlassnetError(
                f"expected a node of {param}'s update under {self.name}",
                got=repr(kind),
                field="kind",
            )
        if found[0].phase == "leaf":
            return None
        keys = found[0].inputs
        given: dict[Key, Node]
        if inputs is None:
            given = {}
        elif isinstance(inputs, Mapping):
            given = dict(inputs)
        else:
            given = dict(zip(keys, inputs, strict=True))
        ins = [given.get(k) or self.symbol(k[0], param, k[1]) for k in keys]
        if role == "new" and fixed:  # a parameter held fixed: {param}_new is itself
            return ins[0]
        return self._symbols(role, ins, t)

    def _symbols(self, role: str, ins: list[Node], t: int | None) -> Node:
        """The right-hand side of ``role``'s rule over its input symbols (declared
        order); subclasses write their own roles and hand the rest (``g``) to this one."""
        from glassnet.mathtree import PLUS, TIMES, row

        if role == "g":  # [d{param}, {param}]
            return row(ins[0], PLUS, hyper("weight_decay", self.weight_decay), TIMES, ins[1])
        raise GlassnetError(f"expected a node kind of {self.name}", got=repr(role), field="kind")

    def words(self, kind: str, param: str | None = None) -> str:
        """One sentence saying what node ``kind`` (computed or a state leaf) is."""
        role, _ = self.split(kind, param)
        return self.role_words.get(role) or _L2_WORDS.get(role, "")

    def why(self, kind: str, param: str | None = None) -> str:
        """Why its rule is what it is (a short derivation in words), or ""."""
        role, _ = self.split(kind, param)
        return self.role_why.get(role) or _L2_WHY.get(role, "")

    # -- mistakes (check) --------------------------------------------------------------
    def alternatives(
        self, param: str, layer: int, *, t: int, decay: bool = True, fixed: bool = False
    ) -> dict[str, dict[Key, Rule]]:
        """Named mistaken rules for this parameter's nodes, each a mapping node → wrong
        rule taking the node's declared inputs (check swaps them in).  Only those that can
        change a result here: none for a fixed parameter."""
        if fixed:
            return {}
        out: dict[str, dict[Key, Rule]] = {}
        if decay and self.weight_decay and self.l2_decay:
            wd, g = self.weight_decay, (f"g_{param}", layer)
            out["weight_decay_forgotten"] = {g: copy_first}
            out["weight_decay_sign"] = {g: lambda ins: l2_grad(ins[0], ins[1], -wd)}
        out.update(self._alternatives(param, layer, t=t, decay=decay))
        return out

    def _alternatives(
        self, param: str, layer: int, *, t: int, decay: bool
    ) -> dict[str, dict[Key, Rule]]:
        return {}

    # -- specs, saving and restoring ---------------------------------------------------
    @classmethod
    def takes(cls, option: str) -> bool:
        """Whether the constructor takes ``option`` (a field, or SGD's ``momentum``
        convenience): how a caller decides to pass a setting, without naming optimisers."""
        return option in inspect.signature(cls.__init__).parameters

    @classmethod
    def from_spec(cls, table: Mapping[str, Any]) -> Optimizer:
        """The optimiser a spec's settings describe (``lr``, ``beta1``, ... — the keys of
        :func:`spec_keys`, without ``optimizer``).  A key another optimiser takes, or none
        does, is an error naming it."""
        own = [f.name for f in cls.fields]
        unknown = sorted(k for k in table if k not in spec_keys())
        if unknown:
            raise GlassnetError(
                f"expected optimiser settings ({', '.join(sorted(spec_keys() - {'optimizer'}))})",
                got=", ".join(map(str, unknown)),
                field=str(unknown[0]),
            )
        misplaced = sorted(k for k in table if k not in own)
        if misplaced:
            raise GlassnetError(
                f"expected only {', '.join(own)} with optimizer = {cls.name!r}",
                got=", ".join(misplaced),
                field=misplaced[0],
            )
        return cls(**table)

    def hyperparameters(self) -> dict[str, Any]:
        """Every field but ``lr`` and ``weight_decay`` (which :meth:`config` writes first)."""
        return {
            f.name: getattr(self, f.name)
            for f in self.fields
            if f.name not in ("lr", "weight_decay")
        }

    def config(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-ready (the model file's form; never pickle)."""
        # weight_decay only where it is a setting (an optimiser may declare none)
        declared = {f.name for f in self.fields}
        decay = {"weight_decay": self.weight_decay} if "weight_decay" in declared else {}
        return {
            "name": self.name,
            "lr": self.lr,
            **decay,
            "schedule": self.schedule.config() if self.schedule is not None else None,
            "t": self.t,
            **self.hyperparameters(),
        }

    def state_arrays(self) -> dict[str, Array]:
        """The state as ``{"<name>.<i>": array}`` (empty before the first step)."""
        return {
            f"{name}.{i}": a for name, arrays in self.state.items() for i, a in enumerate(arrays)
        }

    def load_state_arrays(self, arrays: dict[str, Array], params: list[Array]) -> None:
        """Restore state saved by :meth:`state_arrays`, checked against ``params``."""
        if not arrays:
            self.state = {}
            self._tmp = []
            return
        state: dict[str, list[Array]] = {}
        for name in self.state_names:
            state[name] = []
            for i, p in enumerate(params):
                key = f"{name}.{i}"
                a = arrays.get(key)
                if a is None or a.shape != p.shape:
                    raise GlassnetError(
                        f"expected optimiser state '{key}' shaped {p.shape}",
                        got="nothing" if a is None else f"shape {a.shape}",
                        field="optimizer",
                    )
                state[name].append(np.array(a, dtype=p.dtype))
        self.state = state
        self._allocate(params)

    # -- another engine ----------------------------------------------------------------
    def torch_spec(self) -> tuple[str, dict[str, Any]]:
        """The ``torch.optim`` class name and keyword arguments of the same optimiser.
        Weight decay applies to weight matrices only: give the other parameters a param
        group with ``weight_decay=0``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        decay = f", weight_decay={self.weight_decay!r}" if self.weight_decay else ""
        return f"{type(self).__name__}(lr={self.lr!r}{', ' + options if options else ''}{decay})"


@dataclass
class _FlatState:
    """An optimiser's state laid out as ``layout``'s parameters: ``state`` the dict
    handed out as ``Optimizer.state`` (with ``lists``, its per-parameter views), and per
    group of ``layout`` the group, its state buffers by name and a scratch buffer."""

    layout: FlatParameters
    state: dict[str, list[Array]]
    lists: dict[str, list[Array]]
    groups: list[tuple[FlatGroup, dict[str, Array], Array]]


# -- the registry -------------------------------------------------------------------------
_REGISTRY: dict[str, type[Optimizer]] = {}
OptT = TypeVar("OptT", bound=type[Optimizer])


def register(cls: OptT) -> OptT:
    """Class decorator: make ``cls`` known by its ``name`` (specs, model files, the CLI).
    A second class under a name already taken is refused."""
    if not cls.name:
        raise GlassnetError("expected a class with a name", got=cls.__name__, field="optimizer")
    known = _REGISTRY.get(cls.name)
    if known is not None and known is not cls:
        if (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise GlassnetError(
                "expected a name no other optimiser has",
                got=f"{cls.name!r} (already {known.__qualname__})",
                field="optimizer",
            )
    _REGISTRY[cls.name] = cls
    return cls


def names() -> tuple[str, ...]:
    """Every registered optimiser name."""
    return tuple(_REGISTRY)


def optimizer_class(name: str) -> type[Optimizer]:
    """The class registered under ``name``; an unknown name is an error, never a default."""
    cls = _REGISTRY.get(name.lower()) if isinstance(name, str) else None
    if cls is None:
        raise GlassnetError(
            f"expected one of {', '.join(_REGISTRY)}", got=repr(name), field="optimizer"
        )
    return cls


def get_optimizer(spec: str | Optimizer, **options: Any) -> Optimizer:
    """An optimiser from its name (``"adam"``, with keyword options) or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    cls = optimizer_class(spec)
    try:
        return cls(**options)
    except TypeError as err:
        raise GlassnetError(
            f"expected options of {cls.__name__}", got=str(err), field="optimizer"
        ) from None


def spec_keys() -> frozenset[str]:
    """The keys a spec may use for its optimiser: ``optimizer`` and every field of every
    registered optimiser (a spec reader picks these out of its table)."""
    return frozenset({"optimizer"} | {f.name for c in _REGISTRY.values() for f in c.fields})


def default_symbol(kind: str, param: str, layer: int) -> Node:
    """:meth:`Optimizer.symbol` of whichever registered optimiser declares ``kind`` (for a
    caller holding a key but no optimiser)."""
    for cls in _REGISTRY.values():
        try:
            return cls.symbol(kind, param, layer)
        except GlassnetError:
            continue
    raise GlassnetError("expected a node kind of an optimiser", got=repr(kind), field="kind")


def optimizer_from_spec(table: Mapping[str, Any]) -> Optimizer:
    """The optimiser of a spec: ``optimizer = "adam"`` (default ``"sgd"``) and its
    settings (see :meth:`Optimizer.from_spec`)."""
    rest = {k: v for k, v in table.items() if k != "optimizer"}
    return optimizer_class(table.get("optimizer", "sgd")).from_spec(rest)


def optimizer_from_config(config: dict[str, Any]) -> Optimizer:
    """Inverse of :meth:`Optimizer.config` (the arrays are restored separately)."""
    from glassnet.optimizers.schedules import schedule_from_config

    options = dict(config)
    name = options.pop("name", None)
    t = options.pop("t", 0)
    options["schedule"] = schedule_from_config(options.pop("schedule", None))
    opt = get_optimizer(str(name), **options)
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise GlassnetError("expected a step count ≥ 0", got=repr(t), field="optimizer.t")
    opt.t = t
    return opt
