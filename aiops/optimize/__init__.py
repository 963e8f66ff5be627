"""Planners and optimisers: the scaling planner (pre-scaling), DEAP tuning of autoscaler settings, PuLP right-sizing.

They return recommendations; only `aiops.actuator` acts on them.
"""
