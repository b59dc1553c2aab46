"""Open311 GeoReport v2 at /open311/v2/, checked by a client written here from the specification
(wiki.open311.org/GeoReport_v2), not from the project's code: XML parsed with xml.etree, JSON with
json, field names and rules as the spec documents them. It lists services, reads a service
definition, posts a request with an api_key (form-urlencoded), reads it back in both formats, follows
a batch request's token, and checks the spec's error shape, status codes and 90-day window; the
reporter's identity never appears in anything the API returns."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import httpx

from tests.integration.workorders_support import community_resident, desk, make_point, move

# ---- the client, from the spec ----

W3_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"}
ATTRIBUTE_FIELDS = {"variable", "code", "datatype", "required", "datatype_description", "order", "description",
                    "values"}
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}


class GeoReportClient:
    """A minimal GeoReport v2 client: one endpoint, one jurisdiction, XML by default."""

    def __init__(self, http: httpx.AsyncClient, endpoint: str, jurisdiction_id: str) -> None:
        self.http, self.endpoint, self.jurisdiction_id = http, endpoint.rstrip("/"), jurisdiction_id

    async def get(self, path: str, fmt: str = "xml", **params) -> httpx.Response:
        params.setdefault("jurisdiction_id", self.jurisdiction_id)
        return await self.http.get(f"{self.endpoint}/{path}.{fmt}", params=params)

    @staticmethod
    def xml(response: httpx.Response, root: str) -> ET.Element:
        assert response.headers["content-type"].startswith("text/xml"), response.headers["content-type"]
        assert "utf-8" in response.headers["content-type"].lower()
        assert re.match(rb'<\?xml version="1.0" encoding="utf-8"\?>', response.content, re.I), response.content[:60]
        document = ET.fromstring(response.content)
        assert document.tag == root and "}" not in document.tag  # schemaless, no namespace
        return document

    @staticmethod
    def fields(element: ET.Element) -> dict[str, str]:
        return {child.tag: (child.text or "") for child in element}

    async def services(self) -> list[dict[str, str]]:
        document = self.xml(await self.get("services"), "services")
        out = []
        for service in document:
            assert service.tag == "service"
            values = self.fields(service)
            assert set(values) <= SERVICE_FIELDS and {"service_code", "service_name", "metadata", "type"} <= set(values)
            assert values["metadata"] in {"true", "false"}
            assert values["type"] in {"realtime", "batch", "blackbox"}
            out.append(values)
        return out

    async def definition(self, code: str) -> dict:
        document = self.xml(await self.get(f"services/{code}"), "service_definition")
        assert document.find("service_code").text == code
        attributes = []
        for attribute in document.find("attributes"):
            assert attribute.tag == "attribute"
            tags = {child.tag for child in attribute}
            assert tags <= ATTRIBUTE_FIELDS and {"variable", "code", "datatype", "required", "order"} <= tags
            assert attribute.find("datatype").text in DATATYPES
            values = [(v.find("key").text, v.find("name").text) for v in attribute.find("values")]
            attributes.append({"code": attribute.find("code").text, "required": attribute.find("required").text,
                               "values": values})
        return {"service_code": code, "attributes": attributes}

    async def post(self, fmt: str = "xml", **form) -> httpx.Response:
        form.setdefault("jurisdiction_id", self.jurisdiction_id)
        return await self.http.post(f"{self.endpoint}/requests.{fmt}", data=form,
                                    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})

    @classmethod
    def requests_xml(cls, response: httpx.Response) -> list[dict[str, str]]:
        document = cls.xml(response, "service_requests")
        out = []
        for request in document:
            assert request.tag == "request"
            values = cls.fields(request)
            assert set(values) <= REQUEST_FIELDS | {"token", "account_id"}, set(values) - REQUEST_FIELDS
            if "status" in values:
                assert values["status"] in {"open", "closed"}
                for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
                    if values.get(name):
                        assert W3_DATETIME.match(values[name]), values[name]
            out.append(values)
        return out

    @staticmethod
    def errors(response: httpx.Response, fmt: str) -> list[tuple[int, str]]:
        if fmt == "xml":
            document = ET.fromstring(response.content)
            assert document.tag == "errors"
            return [(int(e.find("code").text), e.find("description").text) for e in document]
        return [(int(e["code"]), e["description"]) for e in json.loads(response.content)]


# ---- the tests ----

async def test_an_open311_client_lists_services_posts_a_request_and_reads_it_back(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    key = await client.post("/api/workorders/open311-keys", json={"name": "12345 市民热线"}, headers=world.admin.headers)
    assert key.status_code == 201, key.text
    api_key = key.json()["api_key"]
    point = await make_point(client, world, name="7号楼充电棚")
    geo = GeoReportClient(client, "/open311/v2", world.community_code)

    services = await geo.services()
    codes = {s["service_code"]: s for s in services}
    assert {"FAC-01", "ENV-01", "SAF-02"} <= set(codes)
    assert not {"PRI-01", "PRI-02", "SYS-HEALTH", "SYS-OUTREACH", "FAC", "ENV"} & set(codes)  # private, system, groups
    assert codes["FAC-01"]["group"] == "公共设施" and codes["ORD-01"]["type"] == "batch"
    assert codes["SAF-02"]["metadata"] == "true" and codes["ENV-01"]["metadata"] == "false"
    json_services = (await geo.get("services", "json")).json()
    assert isinstance(json_services, list) and {s["service_code"] for s in json_services} == set(codes)
    assert isinstance(json_services[0]["metadata"], bool)

    definition = await geo.definition("SAF-02")
    assert definition["attributes"][0]["code"] == "where" and definition["attributes"][0]["required"] == "true"
    assert ("stairwell", "楼道") in definition["attributes"][0]["values"]

    posted = await geo.post(api_key=api_key, service_code="SAF-02", address_id=point["code"],
                            description="有人从楼上拉电线给电瓶车充电", first_name="建国", last_name="周",
                            phone="13987654321", email="zhou@example.cn", device_id="device-77", account_id="acc-9",
                            **{"attribute[where]": "stairwell"})
    assert posted.status_code == 200, posted.text
    created = geo.requests_xml(posted)
    assert len(created) == 1 and created[0]["service_request_id"].isdigit() and "token" not in created[0]
    rid = created[0]["service_request_id"]

    read = geo.requests_xml(await geo.get(f"requests/{rid}"))
    assert read[0]["service_request_id"] == rid and read[0]["status"] == "open"
    assert read[0]["service_code"] == "SAF-02" and read[0]["address_id"] == point["code"]
    assert read[0]["description"] == "有人从楼上拉电线给电瓶车充电"
    as_json = (await geo.get(f"requests/{rid}", "json")).json()
    assert as_json[0]["service_request_id"] == int(rid) and as_json[0]["status"] == "open"
    listed = geo.requests_xml(await geo.get("requests", service_code="SAF-02,FAC-01", status="open"))
    assert rid in {r["service_request_id"] for r in listed}
    for body in (posted.text, (await geo.get(f"requests/{rid}")).text, (await geo.get("requests", "json")).text):
        for secret in ("13987654321", "zhou@example.cn", "建国", "device-77", "acc-9"):
            assert secret not in body

    # staff see who filed it; the state maps to closed once resolved, with the note as status_notes
    case = (await client.get(f"/api/workorders/{rid}", headers=world.staff.headers)).json()
    assert case["source"] == "partner" and case["reporter"]["phone"] == "13987654321"
    await move(client, world.staff, int(rid), "accept", "受理")
    await move(client, world.staff, int(rid), "out_of_scope", "属于供电所管理", responsible="南桥供电所")
    closed = geo.requests_xml(await geo.get(f"requests/{rid}"))[0]
    assert closed["status"] == "closed" and closed["status_notes"] == "属于供电所管理"
    assert closed["agency_responsible"] == "南桥供电所"
    assert rid in {r["service_request_id"] for r in geo.requests_xml(await geo.get("requests", status="closed"))}
    assert rid not in {r["service_request_id"] for r in geo.requests_xml(await geo.get("requests", status="open"))}

    # a batch service answers with a token; the token yields the id once the community accepts the case
    batch = geo.requests_xml(await geo.post(api_key=api_key, service_code="ORD-01", lat="30.9203", long="121.4712",
                                            description="绿地上搭了铁皮棚"))
    token = batch[0]["token"]
    assert "service_request_id" not in batch[0]
    pending = (await geo.get(f"tokens/{token}", "json")).json()
    assert pending == [{"service_request_id": None, "token": token}]
    wid = (await client.get("/api/workorders", params={"source": "partner", "category_id": d.categories["ORD-01"]["id"]},
                            headers=world.staff.headers)).json()["items"][0]["id"]
    await move(client, world.staff, wid, "accept", "受理")
    resolved = geo.requests_xml(await geo.get(f"tokens/{token}"))
    assert resolved == [{"service_request_id": str(wid), "token": token}]

    # private cases never appear, even by id
    resident = await community_resident(client, server, world)
    private = await client.post("/api/app/workorders", json={"category_id": d.categories["PRI-01"]["id"],
                                                             "address": "5号楼", "description": "邻里纠纷"},
                                headers=resident.headers)
    pid = private.json()["id"]
    assert (await geo.get(f"requests/{pid}")).status_code == 404
    assert str(pid) not in {r["service_request_id"] for r in geo.requests_xml(await geo.get("requests"))}
    public = geo.requests_xml(await geo.get("requests", service_request_id=f"{rid},{pid}"))
    assert [r["service_request_id"] for r in public] == [rid]


async def test_open311_errors_follow_the_spec(client, make_world):
    world = await make_world()
    await desk(client, world)
    key = (await client.post("/api/workorders/open311-keys", json={"name": "平台"}, headers=world.admin.headers)).json()
    geo = GeoReportClient(client, "/open311/v2", world.community_code)
    now = datetime.now(UTC)

    for fmt in ("xml", "json"):
        missing_key = await geo.post(fmt, service_code="ENV-01", address_string="3号楼")
        assert missing_key.status_code == 403 and geo.errors(missing_key, fmt)[0][0] == 403
        wrong_key = await geo.post(fmt, api_key="zl311_not-a-key", service_code="ENV-01", address_string="3号楼")
        assert wrong_key.status_code == 403 and "api_key" in geo.errors(wrong_key, fmt)[0][1]
        no_place = await geo.post(fmt, api_key=key["api_key"], service_code="ENV-01")
        assert no_place.status_code == 400 and "location" in geo.errors(no_place, fmt)[0][1]
        unknown = await geo.post(fmt, api_key=key["api_key"], service_code="NOPE", address_string="3号楼")
        assert unknown.status_code == 404 and geo.errors(unknown, fmt) == [(404, "service_code not found")]
        required = await geo.post(fmt, api_key=key["api_key"], service_code="SAF-02", address_string="3号楼")
        assert required.status_code == 400
        too_long = await geo.get("requests", fmt, start_date=(now - timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                 end_date=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        assert too_long.status_code == 400 and "90 days" in geo.errors(too_long, fmt)[0][1]
        no_zone = await geo.get("requests", fmt, start_date="2026-01-01T00:00:00")
        assert no_zone.status_code == 400
        assert (await geo.get("services/NOPE", fmt)).status_code == 404
        assert (await geo.get("requests/999999999", fmt)).status_code == 404
        assert (await geo.get("tokens/nope", fmt)).status_code == 404
        other = await geo.get("services", fmt, jurisdiction_id="no-such-community")
        assert other.status_code == 404 and "jurisdiction_id" in geo.errors(other, fmt)[0][1]
        anonymous = await client.get(f"/open311/v2/services.{fmt}")  # several communities: must say which
        assert anonymous.status_code == 400 and "jurisdiction_id" in geo.errors(anonymous, fmt)[0][1]

    # a key files only into its own community
    elsewhere = await make_world()
    await desk(client, elsewhere)
    crossing = await geo.post(api_key=key["api_key"], jurisdiction_id=elsewhere.community_code, service_code="ENV-01",
                              address_string="3号楼")
    assert crossing.status_code == 403 and geo.errors(crossing, "xml")[0][0] == 403

    # a window within 90 days is fine, and the default window is the last 90 days
    ok = await geo.get("requests", start_date=(now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       end_date=now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert ok.status_code == 200 and GeoReportClient.requests_xml(ok) == []
