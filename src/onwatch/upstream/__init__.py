"""Upstream watch: re-run a team's checks against each new release of the packages it uses.

``releases`` holds the pure part: a ``Release`` of a package and the choice of which releases
are due for testing (PEP 440 order, yanked and pre-releases left out, ``min_age`` waited out).
``index`` polls a package index through its simple repository API (PEP 691 JSON or PEP 503
HTML) and turns every way a poll can fail into an ``IndexProblem`` with a ``kind``.

Still to come: building a virtualenv with a release installed, and comparing its results with
the baseline run.
"""
