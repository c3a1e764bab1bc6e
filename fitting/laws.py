"""Scaling-law forms as data.

A law predicts error from the LLM size N (billions of parameters) and the number of
visual tokens V as a sum of power terms plus a constant floor D:

    error = Σ_k c_k · Π_j variable_j^(−exponent_j) + D

The coefficients c_k and D enter linearly, the exponents non-linearly; the solver uses
that split (closed-form coefficients for any fixed exponents).  Adding a form means
adding one `Law(...)` to `LAWS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

VARIABLES = ("N", "V")
OFFSET = "D"


@dataclass(frozen=True)
class PowerTerm:
    """coefficient · Π variable^(−exponent), for (exponent, variable) in `powers`."""

    coefficient: str
    powers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Law:
    name: str
    formula: str
    terms: tuple[PowerTerm, ...]

    @cached_property
    def coefficient_names(self) -> tuple[str, ...]:
        return tuple(term.coefficient for term in self.terms)

    @cached_property
    def exponent_names(self) -> tuple[str, ...]:
        names = [exponent for term in self.terms for exponent, _ in term.powers]
        return tuple(dict.fromkeys(names))

    @cached_property
    def parameter_names(self) -> tuple[str, ...]:
        """Order of the parameter vectors used throughout: coefficients, exponents, D."""
        return self.coefficient_names + self.exponent_names + (OFFSET,)

    @cached_property
    def exponent_variable(self) -> dict[str, str]:
        """Which variable each exponent acts on (an exponent identifies only if it varies)."""
        return {exponent: variable for term in self.terms for exponent, variable in term.powers}

    @cached_property
    def _power_tensor(self) -> np.ndarray:
        """(terms, exponents, variables) indicator: term k raises variable v to −exponent p."""
        tensor = np.zeros((len(self.terms), len(self.exponent_names), len(VARIABLES)))
        for k, term in enumerate(self.terms):
            for exponent, variable in term.powers:
                tensor[k, self.exponent_names.index(exponent), VARIABLES.index(variable)] = 1.0
        return tensor

    def log_bases(self, exponents: np.ndarray, log_variables: np.ndarray) -> np.ndarray:
        """log of every term's basis function.

        exponents: (..., n_exponents); log_variables: (2, n_points) = (log N, log V).
        Returns (..., n_points, n_terms).
        """
        per_exponent = np.einsum("kpv,vn->pnk", self._power_tensor, log_variables)
        n_exponents, n_points, n_terms = per_exponent.shape
        logs = np.asarray(exponents) @ per_exponent.reshape(n_exponents, -1)
        return -logs.reshape(logs.shape[:-1] + (n_points, n_terms))

    def split(self, parameters: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(coefficients, exponents, offset) views of parameter vectors (..., n_parameters)."""
        n_terms, n_exponents = len(self.terms), len(self.exponent_names)
        return (
            parameters[..., :n_terms],
            parameters[..., n_terms:n_terms + n_exponents],
            parameters[..., -1],
        )

    def vector(self, params: dict[str, float]) -> np.ndarray:
        return np.array([params[name] for name in self.parameter_names], dtype=float)

    def predict(self, parameters, n_params_b, visual_tokens) -> np.ndarray:
        """Predicted error; `parameters` is a dict or (..., n_parameters) array, broadcast
        against the points (N in billions)."""
        if isinstance(parameters, dict):
            parameters = self.vector(parameters)
        parameters = np.asarray(parameters, dtype=float)
        n_params_b, visual_tokens = np.broadcast_arrays(
            np.asarray(n_params_b, dtype=float), np.asarray(visual_tokens, dtype=float))
        log_variables = np.stack([np.log(n_params_b).ravel(), np.log(visual_tokens).ravel()])
        coefficients, exponents, offset = self.split(parameters)
        bases = np.exp(self.log_bases(exponents, log_variables))
        predicted = np.einsum("...nk,...k->...n", bases, coefficients) + offset[..., None]
        return predicted.reshape(parameters.shape[:-1] + n_params_b.shape)

    def jacobian(self, parameters: np.ndarray, log_variables: np.ndarray) -> np.ndarray:
        """d prediction / d parameters at each point: (n_points, n_parameters)."""
        coefficients, exponents, _ = self.split(parameters)
        bases = np.exp(self.log_bases(exponents, log_variables))
        weighted_logs = np.einsum("nk,k,kpv,vn->np", bases, coefficients, self._power_tensor, log_variables)
        return np.concatenate([bases, -weighted_logs, np.ones((bases.shape[0], 1))], axis=1)

    def predict_each(self, parameters: np.ndarray, n_params_b: np.ndarray, visual_tokens: np.ndarray) -> np.ndarray:
        """Row r of `parameters` (R, n_parameters) at its own points [r, :] of (R, S) arrays."""
        coefficients, exponents, offset = self.split(parameters)
        log_variables = np.log(np.stack([n_params_b, visual_tokens]))
        bases = np.exp(-np.einsum("rp,kpv,vrs->rsk", exponents, self._power_tensor, log_variables))
        return np.einsum("rsk,rk->rs", bases, coefficients) + offset[:, None]

    @cached_property
    def single_product_term(self) -> bool:
        """True for A·N^−α·V^−β + D, whose token optimum has a closed form."""
        return len(self.terms) == 1 and {v for _, v in self.terms[0].powers} == set(VARIABLES)


MULTIPLICATIVE = Law(
    name="multiplicative",
    formula="A / (N^alpha · V^beta) + D",
    terms=(PowerTerm("A", (("alpha", "N"), ("beta", "V"))),),
)
ADDITIVE = Law(
    name="additive",
    formula="A / N^alpha + B / V^beta + D",
    terms=(PowerTerm("A", (("alpha", "N"),)), PowerTerm("B", (("beta", "V"),))),
)

LAWS: dict[str, Law] = {law.name: law for law in (MULTIPLICATIVE, ADDITIVE)}


def get_law(law: str | Law) -> Law:
    if isinstance(law, Law):
        return law
    try:
        return LAWS[law]
    except KeyError:
        raise ValueError(f"unknown law {law!r}; known laws: {', '.join(LAWS)}") from None
