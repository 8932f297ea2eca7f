"""Test helpers shipped for wattwise's own tests and for users' tests.

* :class:`MeterContract` / :class:`MeterEnv`: the contract test every meter passes.
* :class:`FakePowercap`: a real powercap sysfs tree on disk whose counters can be advanced.
* :func:`make_fake_nvml`: a faithful stand-in for the ``pynvml`` module.
"""
