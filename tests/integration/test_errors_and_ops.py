"""Every failure has the one error shape; health, readiness, metrics and the OpenAPI description work."""

from __future__ import annotations


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"startup": "ok", "database": "ok", "cache": "ok", "face_models": "ok",
                                      "chain": "not_configured"}


async def test_unknown_route_wrong_method_and_bad_bodies_share_one_shape(client, make_world):
    assert_error(await client.get("/no/such/route"), 404, "not_found")
    assert_error(await client.delete("/healthz"), 405, "method_not_allowed")
    assert_error(
        await client.post("/api/auth/staff/login", content=b"{not json", headers={"content-type": "application/json"}),
        400, "malformed_json",
    )
    assert_error(await client.post("/api/auth/staff/login", content=b""), 400, "empty_body")


async def test_oversized_body_is_refused_before_it_is_read(server):
    """A client announcing a body over MAX_BODY_BYTES gets 413 in the shared shape, without uploading it."""
    import asyncio
    import json

    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    announced = server.settings.max_body_bytes + 1
    writer.write(
        b"POST /api/auth/staff/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {announced}\r\n\r\n".encode() + b'{"username": "'
    )
    await writer.drain()
    response = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "payload_too_large"


async def test_validation_errors_name_the_field(client, make_world):
    error = assert_error(await client.post("/api/auth/staff/login", json={"username": "x"}), 422, "validation_failed")
    assert error["field"] == "password"
    world = await make_world()
    error = assert_error(
        await client.post("/api/residents", json={"name": "张三", "national_id": "123", "address": "x"},
                          headers=world.staff.headers),
        422,
    )
    assert error["field"] == "national_id"
    error = assert_error(
        await client.get("/api/residents", params={"size": "9999"}, headers=world.staff.headers), 422
    )
    assert error["field"] == "size"


async def test_request_id_is_echoed_and_metrics_count_routes(client):
    response = await client.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    assert len((await client.get("/healthz")).headers["x-request-id"]) == 32
    await client.get("/no/such/route")
    metrics = (await client.get("/metrics")).text
    assert 'zhilian_http_requests_total{method="GET",route="healthz",status="200"}' in metrics or \
        'route="/healthz"' in metrics or 'route="healthz' in metrics
    assert 'zhilian_http_errors_total{route="unmatched",status="404"}' in metrics
    assert "zhilian_http_request_duration_seconds_bucket" in metrics


async def test_openapi_describes_routes_and_their_request_bodies(client):
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in ("/api/auth/staff/login", "/api/residents", "/api/residents/{rid}", "/readyz"):
        assert path in paths, sorted(paths)
    login_body = paths["/api/auth/staff/login"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    text = str(login_body) + str(spec.get("components", {}))
    assert "username" in text and "password" in text


async def test_a_caller_hanging_up_is_not_counted_as_a_server_error(server, client):
    """Callers that give up before the answer (probes with short timeouts) made /readyz log 500s (issue 14 item 4)."""
    import asyncio

    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(5):
        _, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
        await writer.drain()
        writer.close()  # gone before the database check answers
        await writer.wait_closed()
    await asyncio.sleep(0.3)
    metrics = (await client.get("/metrics")).text
    assert 'zhilian_http_errors_total{route="readyz",status="500"}' not in metrics
    assert (await client.get("/readyz")).status_code == 200
