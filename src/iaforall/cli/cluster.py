"""`iaforall cluster up | status | down`: a Ray cluster on this machine, for `serve --cluster`.

`up` starts the nodes in the background and returns; `status` reads the state file and asks the
cluster itself (nodes, and each model's replicas); `down` stops what `up` started, and only that.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from iaforall.cluster.local import (
    ClusterState,
    LocalCluster,
    UpOptions,
    processes_of,
)
from iaforall.core.errors import IAForAllError
from iaforall.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = commands.add_parser(
        "cluster", help="a Ray cluster on this machine, for `serve --cluster`: up, status, down"
    )
    verbs = cluster.add_subparsers(dest="verb", metavar="VERB", required=True)
    up = verbs.add_parser("up", help="start Ray nodes here (in the background)")
    up.add_argument(
        "--nodes", type=int, default=1, help="nodes to start on this machine (default 1: the head)"
    )
    up.add_argument(
        "--host",
        dest="node_host",
        default="127.0.0.1",
        help="IP address the nodes advertise (default 127.0.0.1; a LAN address for workers "
        "on other machines)",
    )
    up.add_argument(
        "--port", dest="gcs_port", type=int, default=6379, help="the head's port (0: any free one)"
    )
    up.add_argument(
        "--client-port",
        type=int,
        default=10001,
        help="Ray Client's port, the one `serve --cluster` joins (0: any free one)",
    )
    up.add_argument("--num-cpus", type=int, help="CPUs of each node (default: all cores)")
    up.add_argument(
        "--object-store-mb", type=int, default=256, help="object store of each node, MiB"
    )
    up.add_argument(
        "--auth",
        dest="cluster_auth",
        choices=["token", "disabled"],
        help="Ray's authentication (default: token, from IAFORALL_CLUSTER_AUTH)",
    )
    up.add_argument(
        "--join",
        metavar="HEAD_HOST:PORT",
        help="start worker nodes of a head running elsewhere, instead of a new cluster",
    )
    up.add_argument(
        "--timeout", type=float, default=90.0, help="seconds each node may take to start"
    )
    status = verbs.add_parser("status", help="the nodes and each model's replicas")
    status.add_argument("--json", action="store_true", help="for machines")
    status.add_argument(
        "--address", help="Ray Client address (default: the local cluster's, or IAFORALL_CLUSTER)"
    )
    verbs.add_parser("down", help="stop the nodes `cluster up` started here")


def run_cluster(settings: Settings, args: argparse.Namespace) -> int:
    out = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    home = settings.store.home
    cluster = LocalCluster(home, settings.cluster.token_path(home))
    try:
        if args.verb == "up":
            return _up(settings, cluster, args, out, err)
        if args.verb == "status":
            return _status(settings, cluster, args, out, err)
        return _down(cluster, out)
    except IAForAllError as exc:
        err.print(exc.message, style="red", markup=False)
        return 1


def _up(
    settings: Settings,
    cluster: LocalCluster,
    args: argparse.Namespace,
    out: Console,
    err: Console,
) -> int:
    auth = args.cluster_auth or settings.cluster.cluster_auth
    if auth == "disabled":
        err.print(
            "Warning: Ray's authentication is off. Anyone who can reach this machine's Ray "
            "ports can run any code on it; keep it for a closed, trusted network.",
            style="yellow",
            markup=False,
        )
    options = UpOptions(
        nodes=args.nodes,
        host=args.node_host,
        port=args.gcs_port,
        client_port=args.client_port,
        num_cpus=args.num_cpus,
        object_store_mb=args.object_store_mb,
        auth=auth,
        join=args.join,
        timeout=args.timeout,
    )
    began = time.monotonic()
    state = cluster.up(options, lambda line: err.print(line, markup=False))
    took = time.monotonic() - began
    count = len(state.nodes)
    nodes = f"{count} node{'s' if count > 1 else ''}"
    if args.join:
        out.print(f"Joined the head at {state.head_address} with {nodes} in {took:.1f} s.")
    else:
        out.print(f"Cluster up in {took:.1f} s: {nodes}, head at {state.head_address}.")
    if auth == "token":
        out.print(f"Token authentication: {state.token_file} (copy it to every machine).")
    if not args.join:
        prefix = "IAFORALL_CLUSTER_AUTH=disabled " if auth == "disabled" else ""
        out.print(f"Next: {prefix}iaforall serve --cluster {state.client_address}")
    out.print("Stop it with: iaforall cluster down", markup=False)
    return 0


def _status(
    settings: Settings,
    cluster: LocalCluster,
    args: argparse.Namespace,
    out: Console,
    err: Console,
) -> int:
    from iaforall.cluster.connect import connect, disconnect
    from iaforall.cluster.status import read_status

    state = cluster.running()
    address = args.address or (state.client_address if state else "") or settings.cluster.cluster
    local = _local_nodes(state)
    if not address:
        if args.json:
            out.print_json(json.dumps({"running": False, "local_nodes": local}))
        else:
            out.print("No local cluster is running: start one with `iaforall cluster up`.")
        return 1
    auth = state.auth if state else settings.cluster.cluster_auth
    token_file = settings.cluster.token_path(settings.store.home)
    connect(address, auth=auth, token_file=token_file)
    try:
        report = read_status(settings.cluster.bounds)
    finally:
        disconnect()
    summary: dict[str, Any] = {"running": True, "address": address, "auth": auth}
    if state:
        summary["head_address"] = state.head_address
    summary |= {"local_nodes": local, **report.as_dict()}
    if args.json:
        out.print_json(json.dumps(summary))
        return 0
    out.print(f"Cluster at {address} ({summary['status']}), authentication: {auth}.")
    if local:
        table = Table("local node", "role", "pid", "processes", title="Started here")
        for entry in local:
            role = "head" if entry["head"] else "worker"
            table.add_row(entry["name"], role, str(entry["pid"]), str(entry["processes"]))
        out.print(table)
        out.print(f"Logs: {Path(local[0]['log_file']).parent}", markup=False)
    nodes = Table("node", "ip", "alive", "CPUs", "memory", title="Ray nodes")
    for node in report.nodes:
        nodes.add_row(
            node.node_id[:12],
            node.ip,
            "yes" if node.alive else "NO",
            f"{node.cpus:g}",
            f"{node.memory_bytes / 2**30:.1f} GiB",
        )
    out.print(nodes)
    if not report.models:
        out.print("No model is deployed (`iaforall serve --cluster ray://HOST:PORT` deploys them).")
        return 0
    models = Table("model", "status", "replicas", "states", title="Models")
    for model in report.models:
        states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(model.replica_states.items()))
        models.add_row(model.model, model.status, f"{model.running}/{model.target}", states)
    out.print(models)
    return 0


def _local_nodes(state: ClusterState | None) -> list[dict[str, Any]]:
    if state is None:
        return []
    return [
        {
            "name": node.name,
            "head": node.head,
            "pid": node.pid,
            "processes": len(processes_of([node.temp_dir])),
            "temp_dir": node.temp_dir,
            "log_file": node.log_file,
        }
        for node in state.nodes
    ]


def _down(cluster: LocalCluster, out: Console) -> int:
    began = time.monotonic()
    stopped = cluster.down()
    if not stopped:
        out.print("No local cluster was running.")
        return 0
    for node in stopped:
        how = " (some needed SIGKILL)" if node.killed else ""
        out.print(f"Stopped {node.name}: {len(node.pids)} processes{how}.", markup=False)
    out.print(f"Cluster down in {time.monotonic() - began:.1f} s.")
    return 0
