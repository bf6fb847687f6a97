"""`tfface service dispatcher|worker`: a tf.data service for `data.service` (input processing on CPU hosts)."""

from __future__ import annotations

import argparse

from tfface.cli.args import PORT, host_port


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("service", help="run a tf.data service dispatcher or worker for data.service")
    role = p.add_subparsers(dest="role", required=True)
    d = role.add_parser("dispatcher", help="the dispatcher the trainer's data.service names")
    d.add_argument("--port", type=PORT, default=5050, help="0: any free port")
    w = role.add_parser("worker", help="a worker that runs the input pipeline (start several, on CPU hosts)")
    w.add_argument("--dispatcher", required=True, type=host_port, metavar="HOST:PORT", help="the dispatcher's address")
    w.add_argument("--port", type=PORT, default=5051, help="0: any free port")
    w.add_argument("--host", default=None, help="the name trainers reach this worker by (default: this host's name)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import socket

    from tfface.data import service

    if args.role == "dispatcher":
        server = service.start_dispatcher(args.port)
        port = server.target.rsplit(":", 1)[1]
        print(f"tf.data dispatcher at {server.target}; set data.service: grpc://<this host>:{port}", flush=True)
    else:
        service.check_dispatcher(args.dispatcher)
        host = args.host or socket.getfqdn()
        server = service.start_worker(args.dispatcher, args.port, host)
        port = server._address.rsplit(":", 1)[1]  # the bound port (--port 0 picks a free one)
        print(f"tf.data worker at {host}:{port}, dispatcher {args.dispatcher}", flush=True)
    server.join()  # serves until killed
    return 0
