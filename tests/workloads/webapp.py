"""A small Flask service for the attach tests and scripts/bench_attach.sh.

Endpoints:
  /            a greeting (plain text)
  /items/N     JSON of N computed items (some CPU, small objects, freed)
  /echo        POST: the body back, upper-cased
  /leak        keeps a LEAK_BYTES bytearray forever (LEAK-WEB): the
               service's leak, big enough that glibc mmaps each block,
               so the kernel's view of an attach without injection sees it
  /stats       JSON: pid, requests served, blocks leaked
  /pid         this process's pid (a gunicorn worker's own)

Run alone:   python3 webapp.py [--port P]   (0: any; prints "ready PORT")
Or as gunicorn's app:  gunicorn --chdir tests/workloads webapp:app
The tests find the leak's line by its marker comment.
"""
import logging
import os
import sys
import threading

from flask import Flask, Response, jsonify, request

LEAK_BYTES = 256 * 1024
app = Flask(__name__)
leaked = []
served = [0]
lock = threading.Lock()


def count():
    with lock:
        served[0] += 1


@app.route("/")
def index():
    count()
    return Response("hello from pid %d\n" % os.getpid(), mimetype="text/plain")


@app.route("/items/<int:n>")
def items(n):
    count()
    n = max(0, min(n, 1000))
    out = [{"id": i, "name": "item-%d" % i, "square": i * i} for i in range(n)]
    return jsonify(count=len(out), items=out)


@app.route("/echo", methods=["POST"])
def echo():
    count()
    return Response(request.get_data().upper(), mimetype="application/octet-stream")


@app.route("/leak")
def leak():
    count()
    leaked.append(bytearray(LEAK_BYTES))  # LEAK-WEB
    return Response("kept %d\n" % len(leaked), mimetype="text/plain")


@app.route("/stats")
def stats():
    return jsonify(pid=os.getpid(), served=served[0], leaked=len(leaked),
                   leaked_bytes=len(leaked) * LEAK_BYTES)


@app.route("/pid")
def pid():
    return Response("%d\n" % os.getpid(), mimetype="text/plain")


def main():
    from werkzeug.serving import make_server

    port = 0
    if len(sys.argv) > 2 and sys.argv[1] == "--port":
        port = int(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # threaded like a real deployment's workers; HTTP/1.1 keep-alive
    from werkzeug.serving import WSGIRequestHandler
    WSGIRequestHandler.protocol_version = "HTTP/1.1"
    srv = make_server("127.0.0.1", port, app, threaded=True)
    print("ready %d" % srv.server_port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
