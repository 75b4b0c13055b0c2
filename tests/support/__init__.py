"""Helpers shared by test modules (test modules never import each other: tests/test_test_layout.py).

``service_calls`` (a /run body and the POST), ``extraction_calls`` (one extraction against a
simulator and its ground-truth check), ``simulator_calls`` (report requests over HTTP),
``dag_runs`` (dag.test() of a day, its XCom and logs, the DAG's Variables), ``clock`` (a
hand-moved clock), ``truth`` and ``warehouse`` (the ground truth and the tables read back),
``hardening`` (processes and fault proxies), ``tiers``. Fixtures are not here: the plugins
under tests/fixtures/ (registered in tests/conftest.py) hold those shared by modules.
"""
