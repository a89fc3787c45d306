"""`shopkeeper demo`'s preparation: the shop, the sample and the model are made once."""

from __future__ import annotations

import sqlalchemy as sa

from plugin import demo_setup, migrate
from plugin.extensions import db
from plugin.models import ModelVersion, Order, Shop


def test_a_second_demo_run_keeps_the_trained_model(app, tmp_path, monkeypatch):
    """README: later runs start in seconds because the database and model are kept."""
    orders = tmp_path / "orders.csv"
    orders.write_text("customer_id,item_id,timestamp,basket_id\n"
                      "c1,A,2011-01-01,b1\nc1,B,2011-01-01,b1\nc2,A,2011-01-02,b2\n"
                      "c2,C,2011-01-09,b3\nc1,A,2011-01-20,b4\n")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("item_id,title,category,price\nA,Red tea cup,Kitchen,2.50\n"
                       "B,Blue tea pot,Kitchen,9.00\nC,Paper chain kit,Party,2.95\n")
    monkeypatch.setattr(demo_setup, "ORDERS_FILE", orders)
    monkeypatch.setattr(demo_setup, "CATALOG_FILE", catalog)
    monkeypatch.setattr(migrate, "upgrade", lambda: None)  # the fixture made the schema

    first = demo_setup.prepare_demo(port=5055)
    again = demo_setup.prepare_demo(port=5056)

    assert again.id == first.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Shop)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 4
    versions = db.session.scalars(sa.select(ModelVersion.status)).all()
    assert versions == ["ready"]  # trained on the first run only
    assert {"http://127.0.0.1:5055", "http://127.0.0.1:5056"} <= set(
        again.settings["allowed_origins"])


def test_the_demo_servers_request_log_holds_networks_not_addresses(app, monkeypatch, caplog):
    """As gunicorn's access log: a shopper's address is cut to its network, and the query
    string (a signed admin link's token) is left out."""
    import http.client
    import logging
    import re
    import socket
    import threading

    import werkzeug.serving

    from plugin import jobs

    started: dict = {}
    monkeypatch.setattr(werkzeug.serving, "run_simple",
                        lambda host, port, wsgi, **options: started.update(options))
    monkeypatch.setattr(jobs, "start_background", lambda app: type(
        "Worker", (), {"stop": lambda self: None})())
    demo_setup.serve(app, host="127.0.0.1", port=5057)
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, app, request_handler=started.get("request_handler"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
            conn.request("GET", "/healthz?token=s3cret-admin-link")
            assert conn.getresponse().status in (200, 503)
            conn.close()
            # a bad request line (an unencoded space in the query): werkzeug's error log
            # ("Bad request syntax (...)") quoted it whole
            with socket.create_connection(("127.0.0.1", server.server_port), 10) as raw:
                raw.sendall(b"GET /admin?next=a b&token=s3cret-link-2 HTTP/1.1\r\n\r\n")
                # 1.0 or 1.1: a threaded werkzeug server made earlier in the process (the
                # browser tests' live server) sets the handler class's protocol version
                assert re.match(rb"HTTP/1\.[01] 400 ", raw.recv(64))
            server.shutdown()
            thread.join(10)
    finally:
        server.server_close()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "werkzeug")
    assert "GET /healthz " in logged
    assert "127.0.0.0 " in logged and "127.0.0.1" not in logged
    assert "s3cret" not in logged
    assert "Bad request syntax ('GET /admin?…" in logged and '"-" 400' in logged
