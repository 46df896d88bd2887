#!/usr/bin/env python3
"""Checks deploy/k8s/poolbench-agents.yaml: it parses (python3-yaml; Debian 12's kubectl
is older than Indexed Jobs, so no dry run), the agents are an Indexed Job whose every
pod runs `poolbench stress` or `run` with --json into the shared volume under its
completion index, and a merge step runs `poolbench merge` on those reports with -o.
Exit 0 when it holds, 1 with the reason otherwise."""
import sys

try:
    import yaml
except ImportError:
    print("python3-yaml is missing: install it (scripts/bootstrap.sh does)")
    sys.exit(1)


def fail(why):
    print(f"{sys.argv[1]}: {why}")
    sys.exit(1)


def command_of(job):
    c = job["spec"]["template"]["spec"]["containers"][0]
    return " ".join(c.get("command", []) + c.get("args", [])), c


def mounts_of(job, container):
    vols = {v["name"]: v for v in job["spec"]["template"]["spec"].get("volumes", [])}
    return {m["mountPath"]: vols.get(m["name"]) for m in container.get("volumeMounts", [])}


docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
jobs = [d for d in docs if d.get("kind") == "Job"]
agents = [j for j in jobs if j["spec"].get("completionMode") == "Indexed"]
if len(agents) != 1:
    fail("no single Job with completionMode: Indexed (the agents)")
agent = agents[0]
n = agent["spec"].get("completions")
if not isinstance(n, int) or n < 2:
    fail("the Indexed Job needs completions >= 2 (one per agent)")
if agent["spec"].get("parallelism", 1) != n:
    fail("parallelism must equal completions: the agents' loads must overlap")
cmd, container = command_of(agent)
if not ("poolbench stress" in cmd or "poolbench run" in cmd):
    fail(f"the agents do not run poolbench stress|run: {cmd}")
if "--json /reports/" not in cmd or "JOB_COMPLETION_INDEX" not in cmd:
    fail(f"each agent must write --json into the shared volume under its completion index: {cmd}")
agent_mounts = mounts_of(agent, container)
if "/reports" not in agent_mounts or agent_mounts["/reports"] is None:
    fail("the agents do not mount the shared volume at /reports")
merges = [j for j in jobs if "poolbench merge" in command_of(j)[0]]
if len(merges) != 1:
    fail("no single merge step running poolbench merge")
mcmd, mcontainer = command_of(merges[0])
if "/reports/agent-" not in mcmd or " -o /reports/" not in mcmd:
    fail(f"the merge step must read the agents' reports and write -o into the volume: {mcmd}")
if mounts_of(merges[0], mcontainer).get("/reports") != agent_mounts["/reports"]:
    fail("the merge step must mount the same volume as the agents")
if f"n={n}" not in mcmd:
    fail(f"the merge step must wait for all {n} agents' reports")
print(f"ok: {n} indexed agents, one merge step")
