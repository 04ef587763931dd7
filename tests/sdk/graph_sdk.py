"""Microsoft's Graph SDK for Python (msgraph-sdk, azure-identity) against the emulator.

A second, independent reading of Microsoft's documentation: every call here goes
through the SDK's own code (MSAL's token request, kiota's middleware, msgraph-core's
paging and batching), so where the emulator disagrees with what the SDK expects of
Graph, one of them misreads the docs. tests/sdk/main.rs starts the emulator over
https, runs this script and checks what reached the emulator.

Each step prints one JSON line (what it did and what came back); any surprise
raises, so the exit code is non-zero. The secret and tokens are never printed.

Environment: EMULATOR_URL (https://127.0.0.1:PORT), TENANT_ID, CLIENT_ID,
CLIENT_SECRET, DOMAIN, PAGING_PREFIX and PAGING_USERS (users the test seeded),
PASSWORD, and SSL_CERT_FILE / REQUESTS_CA_BUNDLE naming the emulator's CA.
"""

import asyncio
import json
import os
import sys
import time
from urllib.parse import urlsplit

import httpx
from azure.identity import ClientSecretCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.user import User
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

SCOPE = "https://graph.microsoft.com/.default"
Query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set")
    return value


BASE = env("EMULATOR_URL").rstrip("/")
GRAPH = f"{BASE}/v1.0"
DOMAIN = env("DOMAIN")


def say(step, **facts):
    print(json.dumps({"step": step, **facts}), flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def replicated(read, ready, what):
    """Reads until `ready(answer)`: a new object takes a moment to replicate
    in Entra (a 404 or an empty result right after the create), and
    Microsoft's guidance is to retry with a delay."""
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = await read()
            if ready(answer):
                return answer
        except APIError as e:
            if e.response_status_code != 404:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not readable after 10 s")
        await asyncio.sleep(0.1)


def new_user(alias, name):
    return User(
        account_enabled=True,
        display_name=name,
        mail_nickname=alias,
        user_principal_name=f"{alias}@{DOMAIN}",
        password_profile=PasswordProfile(
            force_change_password_next_sign_in=True, password=env("PASSWORD")
        ),
    )


def graph_error(e):
    """Status, code and detail codes of an ODataError, as the SDK parsed them."""
    err = e.error
    details = [d.code for d in (err.details or [])] if err else []
    return {
        "status": e.response_status_code,
        "code": err.code if err else None,
        "message": err.message if err else None,
        "details": details,
    }


def client_for(credential):
    # kiota sends the bearer token only to hosts it is told to trust, and
    # only over https; the adapter's base URL replaces graph.microsoft.com.
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[SCOPE], allowed_hosts=[urlsplit(BASE).hostname]
    )
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = GRAPH
    return GraphServiceClient(request_adapter=adapter)


async def users_crud(client):
    created = await client.users.post(new_user("ada", "Ada Lovelace"))
    check(created.id and created.user_principal_name == f"ada@{DOMAIN}", "create")
    say("create", id=created.id, upn=created.user_principal_name)

    got = await replicated(
        lambda: client.users.by_user_id(created.id).get(), lambda u: u is not None, "get"
    )
    check(got.display_name == "Ada Lovelace", "get")
    say("get", id=got.id, display_name=got.display_name)

    query = Query(filter=f"userPrincipalName eq 'ada@{DOMAIN}'", select=["id", "userPrincipalName"])
    found = await client.users.get(RequestConfiguration(query_parameters=query))
    check([u.id for u in found.value] == [created.id], "filter")
    say("filter", ids=[u.id for u in found.value])

    await client.users.by_user_id(created.id).patch(User(job_title="Analyst", department="Engines"))
    patched = await client.users.by_user_id(created.id).get(
        RequestConfiguration(query_parameters=Query(select=["jobTitle", "department"]))
    )
    check((patched.job_title, patched.department) == ("Analyst", "Engines"), "patch")
    say("patch", job_title=patched.job_title, department=patched.department)
    return created.id


async def paging(client):
    prefix, expected = env("PAGING_PREFIX"), int(env("PAGING_USERS"))
    query = Query(filter=f"startswith(displayName,'{prefix}')", top=5, select=["id", "displayName"])
    first = await client.users.get(RequestConfiguration(query_parameters=query))
    check(len(first.value) == 5 and first.odata_next_link, "first page is $top long and links on")
    names = []
    await PageIterator(first, client.request_adapter).iterate(
        lambda u: names.append(u.display_name) or True
    )
    check(len(names) == expected and len(set(names)) == expected, f"paging saw {names}")
    say("paging", first_page=len(first.value), users=len(names))


async def duplicate(client):
    try:
        await client.users.post(new_user("ada", "Ada Again"))
    except ODataError as e:
        facts = graph_error(e)
        check(facts["status"] == 400 and "ObjectConflict" in facts["details"], f"duplicate {facts}")
        say("duplicate", **facts)
        return
    raise AssertionError("a second ada was created")


async def throttled_get(client, user_id):
    # The fault goes in through the emulator's control API; the SDK's retry
    # handler must wait the Retry-After and succeed on its own.
    fault = {
        "method": "GET",
        "path_contains": f"/users/{user_id}",
        "count": 1,
        "kind": {"type": "status", "status": 429, "retry_after": 1},
    }
    async with httpx.AsyncClient() as control:
        r = await control.post(f"{BASE}/_emulator/faults", json=fault)
        check(r.status_code == 201, f"fault injection answered {r.status_code}")
    started = time.monotonic()
    got = await client.users.by_user_id(user_id).get()
    waited = time.monotonic() - started
    # Without the header kiota would back off for 3 s or more.
    check(got.id == user_id and 1.0 <= waited < 2.5, f"retried after {waited:.2f}s")
    say("throttled", id=got.id, waited_secs=round(waited, 2))


def relative(item):
    # msgraph-core 1.5.2 keeps the absolute URL in a batch item (its version
    # regex never matches: msgraph-sdk-python-core#1116, msgraph-sdk-python#1015);
    # $batch wants the URL relative to the version, as the docs' examples show.
    item.url = item.url.removeprefix(GRAPH)
    return item


async def batch(client, user_id):
    def items():
        create = BatchRequestItem(
            client.users.to_post_request_information(new_user("grace", "Grace Hopper")), id="create"
        )
        read = BatchRequestItem(client.users.by_user_id(user_id).to_get_request_information(), id="read")
        return [create, read]

    # As shipped: the absolute item URLs are refused, as Graph refuses them.
    try:
        await client.batch.post(BatchRequestContent({i.id: i for i in items()}))
        raise AssertionError("a batch with absolute item URLs was accepted")
    except APIError as e:
        check(e.response_status_code == 400, f"absolute batch answered {e.response_status_code}")
        say("batch_absolute_urls", status=e.response_status_code)

    content = BatchRequestContent({i.id: relative(i) for i in items()})
    answer = await client.batch.post(content)
    codes = answer.get_response_status_codes()
    check(codes == {"create": 201, "read": 200}, f"batch statuses {codes}")
    # kiota-serialization-json 1.16 drops a batch item's JSON-object body
    # (kiota-python#737), so the SDK cannot show what an item returned;
    # the created user is looked up instead.
    query = Query(filter=f"userPrincipalName eq 'grace@{DOMAIN}'", select=["id"])
    found = await replicated(
        lambda: client.users.get(RequestConfiguration(query_parameters=query)),
        lambda f: len(f.value) == 1,
        "the batch's create",
    )
    grace = found.value[0]
    say("batch", statuses=codes, created=grace.id)
    return grace.id


async def delete(client, user_id):
    await client.users.by_user_id(user_id).delete()
    try:
        await client.users.by_user_id(user_id).get()
    except ODataError as e:
        facts = graph_error(e)
        check(facts["status"] == 404, f"read after delete {facts}")
        say("delete", id=user_id, then=facts)
        return
    raise AssertionError("the deleted user is still readable")


async def main():
    credential = ClientSecretCredential(
        env("TENANT_ID"),
        env("CLIENT_ID"),
        env("CLIENT_SECRET"),
        authority=BASE,
        disable_instance_discovery=True,
    )
    token = credential.get_token(SCOPE)
    check(token.token, "token")
    say("token", expires_in=round(token.expires_on - time.time()))

    client = client_for(credential)
    ada = await users_crud(client)
    await paging(client)
    await duplicate(client)
    await throttled_get(client, ada)
    grace = await batch(client, ada)
    await delete(client, grace)
    say("done")


if __name__ == "__main__":
    asyncio.run(main())
