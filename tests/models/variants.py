"""Scheme variants generated from the registry, so a new scheme is tested without new tests."""
from __future__ import annotations

import itertools
from dataclasses import fields

from memloss.models import CELLS, SCHEMES, SITES, Recurrent, Stack, get_cell, make_scheme
from memloss.models.paths import native_eligible

#: sites a Net applies around its Recurrent stack (word-type embedding dropout)
NET_SITES = tuple(n for n in SITES if SITES.get(n).acts == "net")

# choices for the switches every scheme may have; rates are raised so masks matter
_SWITCHES = {"sampling": ("step", "sequence"), "scaling": ("inverted", "expectation"),
             "tied": (True, False), "shared": (False, True),
             "reading": ("motivation", "printed")}
_RATE = 0.4


def scheme_variants():
    """(id, scheme) for every registered scheme x every combination of its switches."""
    out = []
    for name in SCHEMES.list():
        cls = SCHEMES.get(name)
        names = [f.name for f in fields(cls)]
        switches = [k for k in _SWITCHES if k in names]
        rates = {k: _RATE for k in names if k.startswith("p")}
        for combo in itertools.product(*(_SWITCHES[k] for k in switches)):
            params = dict(rates, **dict(zip(switches, combo)))
            label = ",".join(f"{k}={v}" for k, v in zip(switches, combo))
            out.append((f"{name}[{label}]" if label else name, make_scheme(name, **params)))
    # Semeniuta's forward dropout: its own rate on the output (0.2 in, 0.5 out)
    out.append(("zaremba[p_output]", make_scheme("zaremba", p=0.2, p_output=0.5)))
    out.append(("zaremba[input-only]", make_scheme("zaremba", p=0.3, p_output=0.0)))
    # a shared zoneout mask at two rates (nested masks)
    out.append(("zoneout[shared,nested]", make_scheme("zoneout", p_cell=0.2, p_hidden=0.4,
                                                      shared=True)))
    # stacks as used in the papers' tables
    out.append(("semeniuta+zaremba", Stack((make_scheme("semeniuta", p=0.3),
                                            make_scheme("zaremba", p=0.5)))))
    out.append(("gal+weight-drop", Stack((make_scheme("gal", p=0.3, tied=False),
                                          make_scheme("weight-drop", p=0.3)))))
    out.append(("moon+zoneout+hidden", Stack((make_scheme("moon", p=0.3, sampling="step"),
                                              make_scheme("zoneout", p_cell=0.2, p_hidden=0.3),
                                              make_scheme("hidden-dropout", p=0.2)))))
    return out


def cell_scheme_cases():
    """(id, cell, scheme, valid) for every cell x scheme variant."""
    cases = []
    for cell in CELLS.list():
        spec = get_cell(cell)
        for sid, scheme in scheme_variants():
            try:
                scheme.sites(spec)
                valid = True
            except ValueError:
                valid = False
            cases.append((f"{cell}-{sid}", cell, scheme, valid))
        if cell != "lstm":  # zoneout on hidden states only is valid for every cell
            cases.append((f"{cell}-zoneout[hidden]", cell,
                          make_scheme("zoneout", p_cell=0.0, p_hidden=_RATE), True))
    return cases


def make_layer(cell, input_size, hidden_size, **kw):
    """A Recurrent for layer-level tests: sites a Net would apply (the embedding) are left
    to the absent Net, as a Net does."""
    return Recurrent(cell, input_size, hidden_size, applied_outside=NET_SITES, **kw)


def paths_for(cell, scheme):
    """The paths that run a cell x scheme: reference, fused, and native where eligible."""
    spec = get_cell(cell)
    sites = {k: v for k, v in scheme.sites(spec).items() if k not in NET_SITES}
    return ["reference", "fused"] + (["native"] if native_eligible(sites, spec) else [])
