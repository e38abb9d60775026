"""Simulated panels: ASGI apps that speak each upstream's real wire protocol.

Used by ``panelql demo``, the tests and the benchmarks. Nothing in production imports this
package except the ``demo`` command.
"""
