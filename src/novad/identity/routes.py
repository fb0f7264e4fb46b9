"""The Keystone v3 HTTP API under ``/identity``: one route table, thin handlers.

Handlers parse, call :class:`IdentityService`, and render Keystone's shapes
(every entity with ``links.self``).  Errors are raised as :mod:`novad.errors`
exceptions; the app's error middleware renders those under ``/identity`` with
:func:`keystone_error_body` instead of Nova's shape.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from novad.api.common import Route, base_url, context, json_response, read_json, validate
from novad.config import Config
from novad.errors import Invalid, NotAuthenticated, NotFound, NovadError
from novad.identity.models import (
    DEFAULT_DOMAIN_ID,
    DEFAULT_DOMAIN_NAME,
    Assignment,
    Project,
    Role,
    TokenInfo,
    User,
)
from novad.identity.service import IdentityService, is_default_domain, missing

PREFIX = "/identity"
V3 = f"{PREFIX}/v3"
_DOMAIN = {"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME}
_TAG = "identity"


def keystone_error_body(exc: NovadError) -> dict[str, Any]:
    """An error in Keystone's shape: ``{"error": {"code", "title", "message"}}``."""
    try:
        title = HTTPStatus(exc.status).phrase
    except ValueError:
        title = "Error"
    return {"error": {"code": exc.status, "title": title, "message": exc.message}}


def version_object(url: str) -> dict[str, Any]:
    """The v3 version document, ``url`` being the node's public base URL."""
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{url}{V3}/"}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v3+json"}],
    }


def _flag(request: web.Request, name: str) -> bool | None:
    """A boolean query parameter; present but empty means true."""
    if name not in request.query:
        return None
    return request.query[name].lower() not in ("0", "false", "no", "off")


def _obj(schema_props: dict[str, Any], required: list[str], key: str) -> dict[str, Any]:
    """The JSON schema of ``{key: {...}}`` with the given properties."""
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "object", "required": required,
                                 "properties": schema_props}}}


_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_TEXT = {"type": ["string", "null"]}
_BOOL = {"type": "boolean"}
_ID_OR_NULL = {"type": ["string", "null"]}
_PROJECT_CREATE = _obj({"name": _NAME, "description": _TEXT, "enabled": _BOOL,
                        "domain_id": _ID_OR_NULL, "is_domain": _BOOL,
                        "parent_id": _ID_OR_NULL}, ["name"], "project")
_PROJECT_UPDATE = _obj({"name": _NAME, "description": _TEXT, "enabled": _BOOL},
                       [], "project")
_USER_PROPS = {"name": _NAME, "password": {"type": ["string", "null"]}, "enabled": _BOOL,
               "default_project_id": _ID_OR_NULL, "domain_id": _ID_OR_NULL}
_USER_CREATE = _obj(_USER_PROPS, ["name"], "user")
_USER_UPDATE = _obj(_USER_PROPS, [], "user")
_PASSWORD_CHANGE = _obj({"password": {"type": "string"},
                         "original_password": {"type": "string"}},
                        ["password", "original_password"], "user")
_ROLE_CREATE = _obj({"name": _NAME, "description": _TEXT, "domain_id": {"type": "null"}},
                    ["name"], "role")
_SCOPE_REF: dict[str, Any] = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"},
    "domain": {"type": "object", "properties": {"id": {"type": "string"},
                                                "name": {"type": "string"}}}}}
_AUTH = {
    "type": "object", "required": ["auth"],
    "properties": {"auth": {"type": "object", "required": ["identity"], "properties": {
        "identity": {"type": "object", "required": ["methods"], "properties": {
            "methods": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "password": {"type": "object", "required": ["user"], "properties": {
                "user": {**_SCOPE_REF, "required": ["password"],
                         "properties": {**_SCOPE_REF["properties"],
                                        "password": {"type": "string"}}}}},
            "token": {"type": "object", "required": ["id"],
                      "properties": {"id": {"type": "string"}}}}},
        "scope": {"type": ["object", "string"]}}}},
}
_USER_KNOWN = frozenset(_USER_PROPS) | {
    "id", "links", "options", "password_expires_at", "original_password"}


def _domain_of(ref: dict[str, Any]) -> str | None:
    domain = ref.get("domain") or {}
    value = domain.get("id", domain.get("name"))
    return None if value is None else str(value)


class _Handlers:
    """The handlers, bound to one service and configuration."""

    def __init__(self, service: IdentityService, config: Config) -> None:
        self.service = service
        self.config = config
        self.max_body = config.DEFAULT.max_request_body_size

    def url(self, request: web.Request) -> str:
        """This node's public base URL."""
        return base_url(request, self.config.api.public_endpoint)

    def v3(self, request: web.Request) -> str:
        """The public Keystone v3 URL."""
        return self.url(request) + V3

    def collection(self, request: web.Request, key: str, items: list[Any]) -> web.Response:
        """A Keystone list body with its ``links``."""
        return json_response({key: items, "links": {
            "self": self.url(request) + request.path_qs, "previous": None, "next": None}})

    async def body(self, request: web.Request, schema: dict[str, Any]) -> Any:
        """The validated JSON body."""
        body = await read_json(request, self.max_body)
        validate(body, schema)
        return body

    # -- views -------------------------------------------------------------

    def project_view(self, request: web.Request, p: Project) -> dict[str, Any]:
        """Keystone's project."""
        return {"id": p.id, "name": p.name, "domain_id": p.domain_id,
                "description": p.description, "enabled": p.enabled,
                "parent_id": p.domain_id, "is_domain": False, "tags": [], "options": {},
                "links": {"self": f"{self.v3(request)}/projects/{p.id}"}}

    def user_view(self, request: web.Request, u: User) -> dict[str, Any]:
        """Keystone's user (free-form attributes flattened in)."""
        view: dict[str, Any] = {**u.extra, "id": u.id, "name": u.name,
                                "domain_id": u.domain_id, "enabled": u.enabled,
                                "password_expires_at": None, "options": {},
                                "links": {"self": f"{self.v3(request)}/users/{u.id}"}}
        if u.default_project_id is not None:
            view["default_project_id"] = u.default_project_id
        return view

    def role_view(self, request: web.Request, r: Role) -> dict[str, Any]:
        """Keystone's role."""
        return {"id": r.id, "name": r.name, "domain_id": None,
                "description": r.description or None, "options": {},
                "links": {"self": f"{self.v3(request)}/roles/{r.id}"}}

    def domain_view(self, request: web.Request) -> dict[str, Any]:
        """The one domain."""
        return {**_DOMAIN, "description": "The default domain", "enabled": True,
                "tags": [], "options": {},
                "links": {"self": f"{self.v3(request)}/domains/{DEFAULT_DOMAIN_ID}"}}

    def assignment_view(self, request: web.Request, a: Assignment, names: bool
                        ) -> dict[str, Any]:
        """Keystone's role assignment, with names when asked."""
        role: dict[str, Any] = {"id": a.role_id}
        user: dict[str, Any] = {"id": a.user_id}
        project: dict[str, Any] = {"id": a.project_id}
        if names:
            role["name"] = a.role_name
            user.update(name=a.user_name, domain=dict(_DOMAIN))
            project.update(name=a.project_name, domain=dict(_DOMAIN))
        link = f"{self.v3(request)}/projects/{a.project_id}/users/{a.user_id}/roles/{a.role_id}"
        return {"role": role, "user": user, "scope": {"project": project},
                "links": {"assignment": link}}

    # -- versions and tokens -----------------------------------------------

    async def versions(self, request: web.Request) -> web.Response:
        """GET /identity: the one version, as a 300 Multiple Choices."""
        return json_response({"versions": {"values": [version_object(self.url(request))]}},
                             status=300)

    async def version(self, request: web.Request) -> web.Response:
        """GET /identity/v3: the v3 version document."""
        return json_response({"version": version_object(self.url(request))})

    async def issue_token(self, request: web.Request) -> web.Response:
        """POST /auth/tokens: password (or token re-scope) authentication."""
        body = await self.body(request, _AUTH)
        auth = body["auth"]
        methods = auth["identity"]["methods"]
        project_id, project_name = self._scope(auth.get("scope"))
        public = None if _flag(request, "nocatalog") else self.url(request)
        if "password" in methods and "password" in auth["identity"]:
            user = auth["identity"]["password"]["user"]
            token, token_body = await self.service.authenticate(
                user.get("name"), user["password"], user_id=user.get("id"),
                user_domain=_domain_of(user), project_id=project_id,
                project_name=project_name, public_url=public)
        elif "token" in methods and "token" in auth["identity"]:
            token, token_body = await self.service.rescope(
                auth["identity"]["token"]["id"], project_id=project_id,
                project_name=project_name, public_url=public)
        else:
            raise NotAuthenticated("Only the password and token methods are supported.")
        return json_response(token_body, status=201, headers={"X-Subject-Token": token})

    @staticmethod
    def _scope(scope: Any) -> tuple[str | None, str | None]:
        """(project id, project name) of an auth scope; (None, None) unscoped."""
        if not isinstance(scope, dict) or not scope:
            return None, None
        project = scope.get("project")
        if not isinstance(project, dict):
            raise NotAuthenticated("novad issues project-scoped tokens only.")
        if "id" in project:
            return str(project["id"]), None
        if "name" not in project:
            raise Invalid("A project scope needs an id or a name.")
        if not is_default_domain(_domain_of(project)):
            raise NotAuthenticated()
        return None, str(project["name"])

    async def _subject(self, request: web.Request) -> tuple[TokenInfo, str]:
        token = request.headers.get("X-Subject-Token")
        if not token:
            raise NotFound("Could not find token.")
        return await self.service.subject_token(context(request), token), token

    async def check_token(self, request: web.Request) -> web.Response:
        """GET /auth/tokens: the body of the X-Subject-Token."""
        info, token = await self._subject(request)
        public = None if _flag(request, "nocatalog") else self.url(request)
        return json_response(self.service.token_body(info, public),
                             headers={"X-Subject-Token": token})

    async def head_token(self, request: web.Request) -> web.Response:
        """HEAD /auth/tokens: 200 when the X-Subject-Token is valid."""
        _, token = await self._subject(request)
        return web.Response(status=200, headers={"X-Subject-Token": token})

    async def revoke_token(self, request: web.Request) -> web.Response:
        """DELETE /auth/tokens: revoke the X-Subject-Token."""
        token = request.headers.get("X-Subject-Token")
        if not token:
            raise NotFound("Could not find token.")
        await self.service.revoke(token, context(request))
        return web.Response(status=204)

    async def auth_projects(self, request: web.Request) -> web.Response:
        """GET /auth/projects: projects the caller may scope to."""
        ctx = context(request)
        projects = await self.service.user_projects(ctx, ctx.user_id, enabled_only=True)
        return self.collection(request, "projects",
                               [self.project_view(request, p) for p in projects])

    async def auth_catalog(self, request: web.Request) -> web.Response:
        """GET /auth/catalog: the service catalog."""
        context(request)
        return self.collection(request, "catalog", self.service.catalog(self.url(request)))

    # -- projects ----------------------------------------------------------

    async def list_projects(self, request: web.Request) -> web.Response:
        """GET /projects?name=&enabled=&domain_id=."""
        q = request.query
        projects = await self.service.list_projects(
            context(request), name=q.get("name"), enabled=_flag(request, "enabled"),
            domain_id=q.get("domain_id"))
        return self.collection(request, "projects",
                               [self.project_view(request, p) for p in projects])

    async def create_project(self, request: web.Request) -> web.Response:
        """POST /projects."""
        ctx = context(request)
        p = (await self.body(request, _PROJECT_CREATE))["project"]
        if p.get("is_domain"):
            raise Invalid("novad has one domain; projects cannot be domains.")
        if p.get("parent_id") not in (None, DEFAULT_DOMAIN_ID):
            raise Invalid("novad does not nest projects.")
        project = await self.service.create_project(
            ctx, p["name"], description=p.get("description") or "",
            enabled=p.get("enabled", True), domain_id=p.get("domain_id"))
        return json_response({"project": self.project_view(request, project)}, status=201)

    async def get_project(self, request: web.Request) -> web.Response:
        """GET /projects/{project_id}."""
        project = await self.service.get_project(context(request),
                                                 request.match_info["project_id"])
        return json_response({"project": self.project_view(request, project)})

    async def update_project(self, request: web.Request) -> web.Response:
        """PATCH /projects/{project_id}."""
        ctx = context(request)
        p = (await self.body(request, _PROJECT_UPDATE))["project"]
        project = await self.service.update_project(
            ctx, request.match_info["project_id"], name=p.get("name"),
            description=p.get("description"), enabled=p.get("enabled"))
        return json_response({"project": self.project_view(request, project)})

    async def delete_project(self, request: web.Request) -> web.Response:
        """DELETE /projects/{project_id}."""
        await self.service.delete_project(context(request), request.match_info["project_id"])
        return web.Response(status=204)

    # -- users -------------------------------------------------------------

    async def list_users(self, request: web.Request) -> web.Response:
        """GET /users?name=&enabled=&domain_id=."""
        q = request.query
        users = await self.service.list_users(
            context(request), name=q.get("name"), enabled=_flag(request, "enabled"),
            domain_id=q.get("domain_id"))
        return self.collection(request, "users", [self.user_view(request, u) for u in users])

    async def create_user(self, request: web.Request) -> web.Response:
        """POST /users (extra attributes such as email are kept)."""
        ctx = context(request)
        u = (await self.body(request, _USER_CREATE))["user"]
        user = await self.service.create_user(
            ctx, u["name"], password=u.get("password"),
            default_project_id=u.get("default_project_id"), enabled=u.get("enabled", True),
            domain_id=u.get("domain_id"),
            extra={k: v for k, v in u.items() if k not in _USER_KNOWN})
        return json_response({"user": self.user_view(request, user)}, status=201)

    async def get_user(self, request: web.Request) -> web.Response:
        """GET /users/{user_id}."""
        user = await self.service.get_user(context(request), request.match_info["user_id"])
        return json_response({"user": self.user_view(request, user)})

    async def update_user(self, request: web.Request) -> web.Response:
        """PATCH /users/{user_id} (``user set``, including ``--password``)."""
        ctx = context(request)
        u = (await self.body(request, _USER_UPDATE))["user"]
        if "domain_id" in u and not is_default_domain(u["domain_id"]):
            raise missing("domain", str(u["domain_id"]))
        user = await self.service.update_user(
            ctx, request.match_info["user_id"], name=u.get("name"),
            password=u.get("password"), enabled=u.get("enabled"),
            default_project_id=u.get("default_project_id"),
            extra={k: v for k, v in u.items() if k not in _USER_KNOWN})
        return json_response({"user": self.user_view(request, user)})

    async def delete_user(self, request: web.Request) -> web.Response:
        """DELETE /users/{user_id}."""
        await self.service.delete_user(context(request), request.match_info["user_id"])
        return web.Response(status=204)

    async def change_password(self, request: web.Request) -> web.Response:
        """POST /users/{user_id}/password: self-service, proven by the old password."""
        u = (await self.body(request, _PASSWORD_CHANGE))["user"]
        await self.service.change_password(request.match_info["user_id"],
                                           u["original_password"], u["password"])
        return web.Response(status=204)

    async def user_projects(self, request: web.Request) -> web.Response:
        """GET /users/{user_id}/projects."""
        projects = await self.service.user_projects(context(request),
                                                    request.match_info["user_id"])
        return self.collection(request, "projects",
                               [self.project_view(request, p) for p in projects])

    # -- roles, assignments, domains ---------------------------------------

    async def list_roles(self, request: web.Request) -> web.Response:
        """GET /roles?name=."""
        roles = await self.service.list_roles(context(request), name=request.query.get("name"))
        return self.collection(request, "roles", [self.role_view(request, r) for r in roles])

    async def create_role(self, request: web.Request) -> web.Response:
        """POST /roles."""
        ctx = context(request)
        r = (await self.body(request, _ROLE_CREATE))["role"]
        role = await self.service.create_role(ctx, r["name"], r.get("description") or "")
        return json_response({"role": self.role_view(request, role)}, status=201)

    async def get_role(self, request: web.Request) -> web.Response:
        """GET /roles/{role_id}."""
        role = await self.service.get_role(context(request), request.match_info["role_id"])
        return json_response({"role": self.role_view(request, role)})

    async def delete_role(self, request: web.Request) -> web.Response:
        """DELETE /roles/{role_id}."""
        await self.service.delete_role(context(request), request.match_info["role_id"])
        return web.Response(status=204)

    def _grant_args(self, request: web.Request) -> tuple[str, str, str]:
        m = request.match_info
        return m["project_id"], m["user_id"], m["role_id"]

    async def grant(self, request: web.Request) -> web.Response:
        """PUT /projects/{p}/users/{u}/roles/{r} (``role add``)."""
        await self.service.grant(context(request), *self._grant_args(request))
        return web.Response(status=204)

    async def ungrant(self, request: web.Request) -> web.Response:
        """DELETE /projects/{p}/users/{u}/roles/{r} (``role remove``)."""
        await self.service.ungrant(context(request), *self._grant_args(request))
        return web.Response(status=204)

    async def check_grant(self, request: web.Request) -> web.Response:
        """HEAD /projects/{p}/users/{u}/roles/{r}: 204 when held, else 404."""
        await self.service.check_grant(context(request), *self._grant_args(request))
        return web.Response(status=204)

    async def project_user_roles(self, request: web.Request) -> web.Response:
        """GET /projects/{p}/users/{u}/roles."""
        m = request.match_info
        held = await self.service.list_assignments(
            context(request), user_id=m["user_id"], project_id=m["project_id"])
        roles = [Role(a.role_id, a.role_name, "") for a in held]
        return self.collection(request, "roles", [self.role_view(request, r) for r in roles])

    async def role_assignments(self, request: web.Request) -> web.Response:
        """GET /role_assignments with Keystone's filters (no groups, domains, system)."""
        q = request.query
        ctx = context(request)
        unsupported = ("group.id", "scope.domain.id", "scope.system",
                       "scope.OS-INHERIT:inherited_to")
        if any(q.get(k) for k in unsupported):
            found: list[Assignment] = []
        else:
            found = await self.service.list_assignments(
                ctx, user_id=q.get("user.id"), project_id=q.get("scope.project.id"),
                role_id=q.get("role.id"))
        names = bool(_flag(request, "include_names"))
        return self.collection(request, "role_assignments",
                               [self.assignment_view(request, a, names) for a in found])

    async def list_domains(self, request: web.Request) -> web.Response:
        """GET /domains: only ``default`` (named ``Default``)."""
        context(request)
        name, enabled = request.query.get("name"), _flag(request, "enabled")
        match = name in (None, DEFAULT_DOMAIN_NAME) and enabled in (None, True)
        return self.collection(request, "domains", [self.domain_view(request)] if match else [])

    async def get_domain(self, request: web.Request) -> web.Response:
        """GET /domains/{domain_id}."""
        context(request)
        domain_id = request.match_info["domain_id"]
        if domain_id != DEFAULT_DOMAIN_ID:
            raise missing("domain", domain_id)
        return json_response({"domain": self.domain_view(request)})


def routes(service: IdentityService, config: Config) -> list[Route]:
    """The identity route table.  Everything but discovery, token issue and
    the self-service password change needs a valid ``X-Auth-Token``."""
    h = _Handlers(service, config)
    grant = f"{V3}/projects/{{project_id}}/users/{{user_id}}/roles/{{role_id}}"
    table: list[tuple[str, str, Any, bool, str]] = [
        ("GET", PREFIX, h.versions, True, "Identity API versions"),
        ("GET", V3, h.version, True, "Identity v3 version document"),
        ("GET", f"{V3}/", h.version, True, "Identity v3 version document"),
        ("POST", f"{V3}/auth/tokens", h.issue_token, True, "Issue a token"),
        ("GET", f"{V3}/auth/tokens", h.check_token, False, "Validate a token"),
        ("HEAD", f"{V3}/auth/tokens", h.head_token, False, "Check a token"),
        ("DELETE", f"{V3}/auth/tokens", h.revoke_token, False, "Revoke a token"),
        ("GET", f"{V3}/auth/projects", h.auth_projects, False, "Projects to scope to"),
        ("GET", f"{V3}/auth/catalog", h.auth_catalog, False, "Service catalog"),
        ("GET", f"{V3}/projects", h.list_projects, False, "List projects"),
        ("POST", f"{V3}/projects", h.create_project, False, "Create a project"),
        ("GET", f"{V3}/projects/{{project_id}}", h.get_project, False, "Show a project"),
        ("PATCH", f"{V3}/projects/{{project_id}}", h.update_project, False,
         "Update a project"),
        ("DELETE", f"{V3}/projects/{{project_id}}", h.delete_project, False,
         "Delete a project"),
        ("GET", f"{V3}/projects/{{project_id}}/users/{{user_id}}/roles",
         h.project_user_roles, False, "A user's roles on a project"),
        ("PUT", grant, h.grant, False, "Grant a role"),
        ("DELETE", grant, h.ungrant, False, "Revoke a role"),
        ("HEAD", grant, h.check_grant, False, "Check a role grant"),
        ("GET", f"{V3}/users", h.list_users, False, "List users"),
        ("POST", f"{V3}/users", h.create_user, False, "Create a user"),
        ("GET", f"{V3}/users/{{user_id}}", h.get_user, False, "Show a user"),
        ("PATCH", f"{V3}/users/{{user_id}}", h.update_user, False, "Update a user"),
        ("DELETE", f"{V3}/users/{{user_id}}", h.delete_user, False, "Delete a user"),
        ("POST", f"{V3}/users/{{user_id}}/password", h.change_password, True,
         "Change one's own password"),
        ("GET", f"{V3}/users/{{user_id}}/projects", h.user_projects, False,
         "A user's projects"),
        ("GET", f"{V3}/roles", h.list_roles, False, "List roles"),
        ("POST", f"{V3}/roles", h.create_role, False, "Create a role"),
        ("GET", f"{V3}/roles/{{role_id}}", h.get_role, False, "Show a role"),
        ("DELETE", f"{V3}/roles/{{role_id}}", h.delete_role, False, "Delete a role"),
        ("GET", f"{V3}/role_assignments", h.role_assignments, False,
         "List role assignments"),
        ("GET", f"{V3}/domains", h.list_domains, False, "List domains"),
        ("GET", f"{V3}/domains/{{domain_id}}", h.get_domain, False, "Show a domain"),
    ]
    return [Route(method, path, handler, public=public, summary=summary, tag=_TAG)
            for method, path, handler, public, summary in table]
