//! A stand-in for an Octopus Deploy server on 127.0.0.1 (Octopus cannot run
//! here), written from octopus-forward.md §8: the routes of §8.2 exactly
//! (paths literal and case-sensitive, `{S}` an existing `Spaces-<n>`;
//! anything else `404`, a known path with another method `405`), the
//! checks of §8.3 in order (route, key in `X-Octopus-ApiKey`, permission,
//! a JSON object body on POST), the writing routes' behaviour of §8.4
//! (validation sentences in `ErrorMessage` or `Errors` as the error style
//! says, versions, duplicates, tasks following a script), collections with
//! Octopus's paging links, and faults a test can put on a route (a status,
//! a delay, a lost response after the change is stored, a redirect,
//! camelCase keys in E2's answer).
//!
//! Every request is recorded (method, path, raw query, header names,
//! whether the key matched, the parsed body); an `apikey` query parameter
//! and, on `POST /api/{S}/releases` and `POST /api/{S}/deployments`, a body
//! field not spelled as the spec lists it are **violations**.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::forge_api::read_request;

/// The 401 sentence for a request without a key.
pub const NO_KEY: &str =
    "You must be logged in to perform this action. Please provide a valid API key or log in again.";
/// The 401 sentence for an unknown key.
pub const BAD_KEY: &str = "The API key you provided was not valid. Please double-check your API key and try again. For instructions on finding your API key, please visit: https://oc.to/ApiKey";

/// Where a validation sentence goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `ErrorMessage` holds the sentence, `Errors: []`.
    Message,
    /// `ErrorMessage` is generic, `Errors` holds the sentence.
    Errors,
}

/// A fault put on a route (method and path, without query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and JSON body instead.
    Status(u16, String),
    /// Wait this long before answering.
    Delay(Duration),
    /// Store the change, then drop the connection without an answer.
    DropAfterStore,
    /// `302` to this `Location`.
    Redirect(String),
    /// E2 answers with camelCase keys.
    CamelCase,
}

/// One recorded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// `GET`, `POST`.
    pub method: String,
    /// The path, without query.
    pub path: String,
    /// The raw query (`skip=0&take=100`), empty when none.
    pub query: String,
    /// The header names sent, lower-cased.
    pub header_names: Vec<String>,
    /// The `X-Octopus-ApiKey` value, when one was sent.
    pub api_key: Option<String>,
    /// Whether the key was a known one.
    pub key_matched: bool,
    /// The parsed body (`Null` when none).
    pub body: Value,
    /// The status answered (`0`: the connection was dropped).
    pub status: u16,
    /// The whole request target as sent (path and query).
    pub target: String,
}

/// A template package of a project.
#[derive(Debug, Clone, Default)]
pub struct Package {
    /// `ActionName`.
    pub action_name: String,
    /// `PackageReferenceName` (`None`: null).
    pub reference_name: Option<String>,
    /// `PackageId`.
    pub package_id: String,
    /// `FeedId`.
    pub feed_id: String,
    /// `FixedVersion` (empty: resolved from the feed).
    pub fixed_version: String,
    /// `IsResolvable`.
    pub resolvable: bool,
}

/// How a project is set up.
#[derive(Debug, Clone, Default)]
pub struct ProjectSpec {
    /// `IsDisabled`.
    pub disabled: bool,
    /// `IsVersionControlled`.
    pub version_controlled: bool,
    /// Versioned from a package (`NextVersionIncrement` null).
    pub package_versioned: bool,
    /// Template packages.
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone)]
struct Project {
    id: String,
    name: String,
    slug: String,
    space: String,
    spec: ProjectSpec,
}

#[derive(Debug, Clone)]
struct Environment {
    id: String,
    name: String,
    sort: usize,
    space: String,
}

#[derive(Debug, Clone)]
struct Channel {
    id: String,
    project: String,
    name: String,
    default: bool,
}

#[derive(Debug, Clone)]
struct Release {
    id: String,
    project: String,
    channel: String,
    version: String,
    notes: String,
    packages: Value,
    space: String,
}

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    release: String,
    environment: String,
    project: String,
    channel: String,
    task: String,
    comments: String,
    space: String,
}

#[derive(Debug, Clone)]
struct Task {
    id: String,
    deployment: String,
    project: String,
    space: String,
    script: Vec<String>,
    gets: usize,
}

struct World {
    version: String,
    keys: HashMap<String, HashSet<String>>,
    spaces: Vec<(String, String)>,
    environments: Vec<Environment>,
    projects: Vec<Project>,
    channels: Vec<Channel>,
    releases: Vec<Release>,
    deployments: Vec<Deployment>,
    tasks: Vec<Task>,
    feeds: HashMap<String, Vec<String>>,
    not_allowed: Vec<(String, String)>,
    script: Vec<String>,
    max_take: Option<usize>,
    style: ErrorStyle,
    faults: Vec<(String, String, Fault, usize)>,
    recorded: Vec<Recorded>,
    violations: Vec<String>,
    next_id: usize,
}

/// The stand-in; stops when dropped.
pub struct OctopusStandIn {
    address: String,
    world: Arc<Mutex<World>>,
    stop: Arc<AtomicBool>,
}

/// An answer.
struct Answer {
    status: u16,
    body: Value,
    location: Option<String>,
    drop: bool,
}

fn ok(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body,
        location: None,
        drop: false,
    }
}

fn not_found(what: &str) -> Answer {
    ok(
        404,
        json!({"ErrorMessage": format!("The resource '{what}' was not found.")}),
    )
}

impl OctopusStandIn {
    /// Starts an Octopus with space `Spaces-1` (`Default`), version
    /// `2024.1.0`, accepting `key` with every permission, tasks going
    /// `Queued → Executing → Success`.
    pub fn start(key: &str) -> OctopusStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("an address").to_string();
        let world = Arc::new(Mutex::new(World {
            version: "2024.1.0".to_owned(),
            keys: HashMap::from([(key.to_owned(), HashSet::new())]),
            spaces: vec![("Spaces-1".to_owned(), "Default".to_owned())],
            environments: Vec::new(),
            projects: Vec::new(),
            channels: Vec::new(),
            releases: Vec::new(),
            deployments: Vec::new(),
            tasks: Vec::new(),
            feeds: HashMap::new(),
            not_allowed: Vec::new(),
            script: vec!["Queued".into(), "Executing".into(), "Success".into()],
            max_take: None,
            style: ErrorStyle::Message,
            faults: Vec::new(),
            recorded: Vec::new(),
            violations: Vec::new(),
            next_id: 1,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (state, stopping) = (world.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                let (answer, delay) = {
                    let mut world = state.lock().unwrap_or_else(|e| e.into_inner());
                    world.handle(&request)
                };
                if let Some(delay) = delay {
                    std::thread::sleep(delay);
                }
                let mut stream = stream;
                if answer.drop {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let body = answer.body.to_string();
                let mut head = format!(
                    "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
                    answer.status,
                    reason(answer.status),
                    body.len()
                );
                if let Some(location) = &answer.location {
                    head.push_str(&format!("Location: {location}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body.as_bytes());
            }
        });
        OctopusStandIn {
            address,
            world,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the root `Version`.
    pub fn set_version(&self, version: &str) {
        self.lock().version = version.to_owned();
    }

    /// Accepts `key`, lacking the `missing` permissions.
    pub fn add_key(&self, key: &str, missing: &[&str]) {
        self.lock().keys.insert(
            key.to_owned(),
            missing.iter().map(|p| (*p).to_owned()).collect(),
        );
    }

    /// Adds a space; returns its id.
    pub fn add_space(&self, name: &str) -> String {
        let mut world = self.lock();
        let id = format!("Spaces-{}", world.spaces.len() + 1);
        world.spaces.push((id.clone(), name.to_owned()));
        id
    }

    /// Adds environments to `Spaces-1`, in sort order; returns their ids.
    pub fn add_environments(&self, names: &[&str]) -> Vec<String> {
        let mut world = self.lock();
        names
            .iter()
            .map(|name| {
                let id = format!("Environments-{}", world.id());
                let sort = world.environments.len();
                world.environments.push(Environment {
                    id: id.clone(),
                    name: (*name).to_owned(),
                    sort,
                    space: "Spaces-1".to_owned(),
                });
                id
            })
            .collect()
    }

    /// Adds a project to `Spaces-1` with its `Default` channel; returns its id.
    pub fn add_project(&self, name: &str, spec: ProjectSpec) -> String {
        let mut world = self.lock();
        let id = format!("Projects-{}", world.id());
        let channel = format!("Channels-{}", world.id());
        world.channels.push(Channel {
            id: channel,
            project: id.clone(),
            name: "Default".to_owned(),
            default: true,
        });
        world.projects.push(Project {
            id: id.clone(),
            name: name.to_owned(),
            slug: name.to_lowercase().replace(' ', "-"),
            space: "Spaces-1".to_owned(),
            spec,
        });
        id
    }

    /// The versions of a package in a feed, newest first.
    pub fn set_feed_versions(&self, package_id: &str, versions: &[&str]) {
        self.lock().feeds.insert(
            package_id.to_owned(),
            versions.iter().map(|v| (*v).to_owned()).collect(),
        );
    }

    /// Creates a release directly (as someone in Octopus would).
    pub fn add_release(&self, project: &str, version: &str, notes: &str) -> String {
        let mut world = self.lock();
        let project = world
            .projects
            .iter()
            .find(|p| p.name == project)
            .map(|p| p.id.clone())
            .unwrap_or_default();
        let channel = world.default_channel(&project).unwrap_or_default();
        let id = format!("Releases-{}", world.id());
        world.releases.push(Release {
            id: id.clone(),
            project,
            channel,
            version: version.to_owned(),
            notes: notes.to_owned(),
            packages: json!([]),
            space: "Spaces-1".to_owned(),
        });
        id
    }

    /// Marks deploying `project` to `environment` as not allowed.
    pub fn disallow(&self, project: &str, environment: &str) {
        self.lock()
            .not_allowed
            .push((project.to_owned(), environment.to_owned()));
    }

    /// The states new tasks go through on successive GETs (`Queued`,
    /// `Executing`, `Success`, `Failed(<message>)`, `Canceled`,
    /// `TimedOut(<message>)`); the last repeats.
    pub fn set_task_script(&self, states: &[&str]) {
        self.lock().script = states.iter().map(|s| (*s).to_owned()).collect();
    }

    /// An upper bound on page sizes.
    pub fn set_max_take(&self, take: usize) {
        self.lock().max_take = Some(take);
    }

    /// Where validation sentences go.
    pub fn set_error_style(&self, style: ErrorStyle) {
        self.lock().style = style;
    }

    /// Puts `fault` on `method path` for its next `times` requests.
    pub fn fault(&self, method: &str, path: &str, fault: Fault, times: usize) {
        self.lock()
            .faults
            .push((method.to_owned(), path.to_owned(), fault, times));
    }

    /// Every request so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    /// `METHOD path?query` of every request, in order.
    pub fn calls(&self) -> Vec<String> {
        self.recorded()
            .iter()
            .map(|r| {
                if r.query.is_empty() {
                    format!("{} {}", r.method, r.path)
                } else {
                    format!("{} {}?{}", r.method, r.path, r.query)
                }
            })
            .collect()
    }

    /// What was wrong with the requests so far.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// How many releases and deployments it holds.
    pub fn counts(&self) -> (usize, usize) {
        let world = self.lock();
        (world.releases.len(), world.deployments.len())
    }
}

impl Drop for OctopusStandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The routes of §8.2, by the methods they take.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Root,
    Me,
    UserSpaces,
    Spaces,
    SpaceHome,
    Environments,
    EnvironmentsAll,
    Projects,
    ProjectsAll,
    Project(String),
    Channels(String),
    Process(String),
    Template(String),
    ProjectTemplate(String),
    FeedVersions(String),
    Releases,
    Release(String),
    ProjectReleases(String),
    ProjectRelease(String, String),
    Deployments,
    Task(String),
    CreateRelease,
    CreateDeployment,
}

impl Route {
    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::Releases | Route::CreateRelease | Route::CreateDeployment => &["POST"],
            Route::Deployments => &["GET", "POST"],
            _ => &["GET"],
        }
    }

    fn permission(&self, method: &str) -> Option<&'static str> {
        match (self, method) {
            (Route::Root, _) => None,
            (Route::Releases | Route::CreateRelease, "POST") => Some("ReleaseCreate"),
            (Route::Deployments | Route::CreateDeployment, "POST") => Some("DeploymentCreate"),
            (Route::Environments | Route::EnvironmentsAll, _) => Some("EnvironmentView"),
            _ => Some("ProjectView"),
        }
    }
}

impl World {
    fn id(&mut self) -> usize {
        self.next_id += 1;
        self.next_id
    }

    fn default_channel(&self, project: &str) -> Option<String> {
        self.channels
            .iter()
            .find(|c| c.project == project && c.default)
            .map(|c| c.id.clone())
    }

    fn route(&self, path: &str) -> Option<(Route, Option<String>)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let space_ok = |s: &str| {
            s.strip_prefix("Spaces-")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                && self.spaces.iter().any(|(id, _)| id == s)
        };
        let route = match segments.as_slice() {
            ["api"] => (Route::Root, None),
            ["api", "users", "me"] => (Route::Me, None),
            ["api", "users", _, "spaces"] => (Route::UserSpaces, None),
            ["api", "spaces"] => (Route::Spaces, None),
            ["api", "tasks", id] => (Route::Task((*id).to_owned()), None),
            ["api", s, rest @ ..] if space_ok(s) => {
                let space = Some((*s).to_owned());
                let route = match rest {
                    [] => Route::SpaceHome,
                    ["environments"] => Route::Environments,
                    ["environments", "all"] => Route::EnvironmentsAll,
                    ["projects"] => Route::Projects,
                    ["projects", "all"] => Route::ProjectsAll,
                    ["projects", p] => Route::Project((*p).to_owned()),
                    ["projects", p, "channels"] => Route::Channels((*p).to_owned()),
                    ["projects", p, "deploymentprocesses", "template"] => {
                        Route::ProjectTemplate((*p).to_owned())
                    }
                    ["projects", p, "releases"] => Route::ProjectReleases((*p).to_owned()),
                    ["projects", p, "releases", v] => {
                        Route::ProjectRelease((*p).to_owned(), decode(v))
                    }
                    ["deploymentprocesses", id] => Route::Process((*id).to_owned()),
                    ["deploymentprocesses", id, "template"] => Route::Template((*id).to_owned()),
                    ["feeds", _, "packages", "versions"] => Route::FeedVersions(String::new()),
                    ["releases"] => Route::Releases,
                    ["releases", "create", "v1"] => Route::CreateRelease,
                    ["releases", id] => Route::Release((*id).to_owned()),
                    ["deployments"] => Route::Deployments,
                    ["deployments", "create", "untenanted", "v1"] => Route::CreateDeployment,
                    ["tasks", id] => Route::Task((*id).to_owned()),
                    _ => return None,
                };
                (route, space)
            }
            _ => return None,
        };
        Some(route)
    }

    fn handle(&mut self, request: &crate::http::ReceivedRequest) -> (Answer, Option<Duration>) {
        let (path, query) = request
            .target
            .split_once('?')
            .map_or((request.target.clone(), String::new()), |(p, q)| {
                (p.to_owned(), q.to_owned())
            });
        let params = parse_query(&query);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let api_key = request.header("x-octopus-apikey").map(str::to_owned);
        let key_matched = api_key.as_ref().is_some_and(|k| self.keys.contains_key(k));
        for (name, _) in &params {
            if name.eq_ignore_ascii_case("apikey") {
                self.violations.push(format!(
                    "{} {path}: an apikey query parameter",
                    request.method
                ));
            }
        }
        let mut record = Recorded {
            method: request.method.clone(),
            path: path.clone(),
            query: query.clone(),
            header_names: request.headers.iter().map(|(n, _)| n.clone()).collect(),
            api_key: api_key.clone(),
            key_matched,
            body: body.clone(),
            status: 0,
            target: request.target.clone(),
        };
        let mut delay = None;
        let mut fault = None;
        if let Some(index) = self
            .faults
            .iter()
            .position(|(m, p, _, n)| *m == request.method && *p == path && *n > 0)
        {
            self.faults[index].3 -= 1;
            fault = Some(self.faults[index].2.clone());
        }
        let answer = match fault.clone() {
            Some(Fault::Status(status, text)) => Some(ok(
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )),
            Some(Fault::Redirect(location)) => Some(Answer {
                status: 302,
                body: json!({}),
                location: Some(location),
                drop: false,
            }),
            Some(Fault::Delay(wait)) => {
                delay = Some(wait);
                None
            }
            _ => None,
        };
        let answer = match answer {
            Some(answer) => answer,
            None => {
                let mut answer = self.answer(request, &path, &params, &body, api_key.as_deref());
                if fault == Some(Fault::DropAfterStore) {
                    answer.drop = true;
                }
                if fault == Some(Fault::CamelCase)
                    && let Some(tasks) = answer.body.get("DeploymentServerTasks").cloned()
                {
                    let camel: Vec<Value> = tasks
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(|t| json!({"deploymentId": t["DeploymentId"], "serverTaskId": t["ServerTaskId"]}))
                        .collect();
                    answer.body = json!({"deploymentServerTasks": camel});
                }
                answer
            }
        };
        record.status = if answer.drop { 0 } else { answer.status };
        self.recorded.push(record);
        (answer, delay)
    }

    fn answer(
        &mut self,
        request: &crate::http::ReceivedRequest,
        path: &str,
        params: &[(String, String)],
        body: &Value,
        key: Option<&str>,
    ) -> Answer {
        let Some((route, space)) = self.route(path) else {
            return not_found(path);
        };
        if !route.methods().contains(&request.method.as_str()) {
            return ok(
                405,
                json!({"ErrorMessage": format!("The method {} is not allowed on {path}.", request.method)}),
            );
        }
        if let Some(permission) = route.permission(&request.method) {
            let Some(key) = key else {
                return ok(401, json!({"ErrorMessage": NO_KEY}));
            };
            let Some(missing) = self.keys.get(key) else {
                return ok(401, json!({"ErrorMessage": BAD_KEY}));
            };
            if missing.contains(permission) {
                return ok(
                    403,
                    json!({
                        "ErrorMessage": format!("You do not have permission to perform this action. Please contact your Octopus administrator. Missing permission: {permission}"),
                        "HelpText": format!("This action requires permission to {permission}. None of your teams have this permission."),
                    }),
                );
            }
        }
        if request.method == "POST" {
            let json_type = request
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"));
            if !json_type || !body.is_object() {
                return self.invalid("No request body was supplied.");
            }
        }
        let space = space.unwrap_or_else(|| "Spaces-1".to_owned());
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        match route {
            Route::Root => ok(
                200,
                json!({
                    "Application": "Octopus Deploy",
                    "Version": self.version,
                    "ApiVersion": "3.0.0",
                    "InstallationId": "2b7f1a8e-0000-4000-8000-000000000001",
                    "Links": {
                        "Self": "/api",
                        "CurrentUser": "/api/users/me",
                        "Spaces": "/api/spaces{/id}{?name,skip,ids,take,partialName}",
                        "SpaceHome": "/api/{spaceId}",
                        "Environments": "/api/{spaceId}/environments{/id}{?name,skip,ids,take,partialName}",
                        "Projects": "/api/{spaceId}/projects{/id}{?name,skip,ids,take,partialName}",
                        "Releases": "/api/{spaceId}/releases{/id}{?skip,take,ids}",
                        "Deployments": "/api/{spaceId}/deployments{/id}{?skip,take,ids,projects,environments}",
                        "Tasks": "/api/tasks{/id}{?skip,active,environment,name,node,running,states,take}",
                    },
                }),
            ),
            Route::Me => ok(
                200,
                json!({"Id": "Users-1", "Username": "tako-bot", "DisplayName": "Tako bot", "Links": {"Spaces": "/api/users/Users-1/spaces"}}),
            ),
            Route::UserSpaces => ok(
                200,
                Value::Array(
                    self.spaces
                        .iter()
                        .map(|(id, name)| space_json(id, name))
                        .collect(),
                ),
            ),
            Route::Spaces => {
                let items: Vec<Value> = self
                    .spaces
                    .iter()
                    .filter(|(_, name)| contains(name, get("partialName")))
                    .map(|(id, name)| space_json(id, name))
                    .collect();
                self.collection("Space", path, params, items, 30)
            }
            Route::SpaceHome => ok(
                200,
                json!({"Id": space, "Links": {"Self": format!("/api/{space}")}}),
            ),
            Route::Environments | Route::EnvironmentsAll => {
                let mut environments: Vec<&Environment> = self
                    .environments
                    .iter()
                    .filter(|e| e.space == space)
                    .collect();
                environments.sort_by_key(|e| e.sort);
                let filter = get("partialName").or_else(|| get("name"));
                let items: Vec<Value> = environments
                    .into_iter()
                    .filter(|e| contains(&e.name, filter.clone()))
                    .map(environment_json)
                    .collect();
                if route == Route::EnvironmentsAll {
                    return ok(200, Value::Array(items));
                }
                self.collection("Environment", path, params, items, 10)
            }
            Route::Projects | Route::ProjectsAll => {
                let mut projects: Vec<&Project> =
                    self.projects.iter().filter(|p| p.space == space).collect();
                projects.sort_by(|a, b| a.name.cmp(&b.name));
                let filter = get("partialName").or_else(|| get("name"));
                let items: Vec<Value> = projects
                    .into_iter()
                    .filter(|p| contains(&p.name, filter.clone()))
                    .map(project_json)
                    .collect();
                if route == Route::ProjectsAll {
                    return ok(200, Value::Array(items));
                }
                self.collection("Project", path, params, items, 30)
            }
            Route::Project(id) => match self.project(&id) {
                Some(project) => ok(200, project_json(project)),
                None => not_found(&id),
            },
            Route::Channels(project) => {
                let items: Vec<Value> = self
                    .channels
                    .iter()
                    .filter(|c| c.project == project && contains(&c.name, get("partialName")))
                    .map(|c| json!({"Id": c.id, "Name": c.name, "ProjectId": c.project, "IsDefault": c.default, "SpaceId": space}))
                    .collect();
                self.collection("Channel", path, params, items, 30)
            }
            Route::Process(id) => match self.projects.iter().find(|p| process_id(p) == id) {
                Some(p) => ok(
                    200,
                    json!({"Id": id, "ProjectId": p.id, "Steps": [], "Version": 1, "SpaceId": space,
                        "Links": {"Self": format!("/api/{space}/deploymentprocesses/{id}"), "Project": format!("/api/{space}/projects/{}", p.id),
                        "Template": format!("/api/{space}/deploymentprocesses/{id}/template{{?channel,releaseId}}")}}),
                ),
                None => not_found(&id),
            },
            Route::Template(id) => {
                match self.projects.iter().find(|p| process_id(p) == id).cloned() {
                    Some(p) => ok(200, self.template(&p)),
                    None => not_found(&id),
                }
            }
            Route::ProjectTemplate(id) => match self.project(&id).cloned() {
                Some(p) => ok(200, self.template(&p)),
                None => not_found(&id),
            },
            Route::FeedVersions(_) => {
                let package = get("packageId").unwrap_or_default();
                let items: Vec<Value> = self
                    .feeds
                    .get(&package)
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|v| json!({"PackageId": package, "Version": v}))
                    .collect();
                self.collection("PackageVersion", path, params, items, 30)
            }
            Route::Releases => self.create_release(&space, body),
            Route::Release(id) => match self.releases.iter().find(|r| r.id == id) {
                Some(r) => ok(200, release_json(r)),
                None => not_found(&id),
            },
            Route::ProjectReleases(project) => {
                let items: Vec<Value> = self
                    .releases
                    .iter()
                    .rev()
                    .filter(|r| {
                        r.project == project && contains(&r.version, get("searchByVersion"))
                    })
                    .map(release_json)
                    .collect();
                self.collection("Release", path, params, items, 30)
            }
            Route::ProjectRelease(project, version) => {
                match self
                    .releases
                    .iter()
                    .find(|r| r.project == project && r.version == version)
                {
                    Some(r) => ok(200, release_json(r)),
                    None => not_found(&version),
                }
            }
            Route::Deployments if request.method == "POST" => self.create_deployment(&space, body),
            Route::Deployments => {
                let projects = get("projects");
                let environments = get("environments");
                let items: Vec<Value> = self
                    .deployments
                    .iter()
                    .rev()
                    .filter(|d| {
                        projects
                            .as_ref()
                            .is_none_or(|p| p.split(',').any(|x| x == d.project))
                    })
                    .filter(|d| {
                        environments
                            .as_ref()
                            .is_none_or(|e| e.split(',').any(|x| x == d.environment))
                    })
                    .map(|d| self.deployment_json(d))
                    .collect();
                self.collection("Deployment", path, params, items, 30)
            }
            Route::Task(id) => self.task(&id),
            Route::CreateRelease => self.create_release_v1(&space, body),
            Route::CreateDeployment => self.create_deployment_v1(&space, body),
        }
    }

    fn invalid(&self, sentence: &str) -> Answer {
        ok(
            400,
            match self.style {
                ErrorStyle::Message => json!({"ErrorMessage": sentence, "Errors": []}),
                ErrorStyle::Errors => json!({
                    "ErrorMessage": "There was a problem with your request.",
                    "Errors": [sentence],
                }),
            },
        )
    }

    fn project(&self, id_or_slug: &str) -> Option<&Project> {
        self.projects
            .iter()
            .find(|p| p.id == id_or_slug || p.slug == id_or_slug)
    }

    fn collection(
        &self,
        item_type: &str,
        path: &str,
        params: &[(String, String)],
        items: Vec<Value>,
        default_take: usize,
    ) -> Answer {
        let number = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.parse::<usize>().ok())
        };
        let skip = number("skip").unwrap_or(0);
        let mut take = number("take").unwrap_or(default_take);
        if let Some(max) = self.max_take {
            take = take.min(max);
        }
        let take = take.max(1);
        let total = items.len();
        let page: Vec<Value> = items.into_iter().skip(skip).take(take).collect();
        let link = |skip: usize, take: usize| {
            let mut query: Vec<String> = params
                .iter()
                .filter(|(n, _)| n != "skip" && n != "take")
                .map(|(n, v)| format!("{n}={}", encode(v)))
                .collect();
            query.push(format!("skip={skip}"));
            query.push(format!("take={take}"));
            format!("{path}?{}", query.join("&"))
        };
        let pages = total.div_ceil(take);
        let mut links = Map::new();
        links.insert("Self".into(), Value::from(link(skip, take)));
        links.insert(
            "Template".into(),
            Value::from(format!("{path}{{?skip,take}}")),
        );
        links.insert("Page.All".into(), Value::from(link(0, 2_147_483_647)));
        links.insert("Page.Current".into(), Value::from(link(skip, take)));
        if skip + take < total {
            links.insert("Page.Next".into(), Value::from(link(skip + take, take)));
        }
        if skip > 0 {
            links.insert(
                "Page.Previous".into(),
                Value::from(link(skip.saturating_sub(take), take)),
            );
        }
        ok(
            200,
            json!({
                "ItemType": item_type,
                "TotalResults": total,
                "ItemsPerPage": take,
                "NumberOfPages": pages,
                "LastPageNumber": pages.saturating_sub(1),
                "Items": page,
                "Links": links,
            }),
        )
    }

    fn next_version(&self, project: &Project) -> Option<String> {
        if project.spec.package_versioned {
            return None;
        }
        let last = self.releases.iter().rev().find(|r| r.project == project.id);
        Some(match last {
            None => "0.0.1".to_owned(),
            Some(release) => {
                let core = release.version.split(['-', '+']).next().unwrap_or_default();
                let mut parts: Vec<u64> = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
                parts.resize(3, 0);
                parts.truncate(3);
                parts[2] += 1;
                format!("{}.{}.{}", parts[0], parts[1], parts[2])
            }
        })
    }

    fn template(&self, project: &Project) -> Value {
        let last = self
            .releases
            .iter()
            .rev()
            .find(|r| r.project == project.id)
            .map(|r| r.version.clone());
        let packages: Vec<Value> = project
            .spec
            .packages
            .iter()
            .map(|p| json!({
                "ActionName": p.action_name, "StepName": p.action_name,
                "PackageReferenceName": p.reference_name, "PackageId": p.package_id,
                "FeedId": p.feed_id, "FixedVersion": p.fixed_version, "IsResolvable": p.resolvable,
                "VersionSelectedLastRelease": null,
            }))
            .collect();
        json!({
            "DeploymentProcessId": process_id(project),
            "LastReleaseVersion": last,
            "NextVersionIncrement": self.next_version(project),
            "VersioningPackageStepName": if project.spec.package_versioned { project.spec.packages.first().map(|p| p.action_name.clone()) } else { None },
            "VersioningPackageReferenceName": null,
            "Packages": packages,
            "GitResources": [],
            "Links": {},
        })
    }

    fn create_release(&mut self, space: &str, body: &Value) -> Answer {
        let allowed = [
            "ProjectId",
            "ChannelId",
            "Version",
            "ReleaseNotes",
            "SelectedPackages",
            "SpaceId",
        ];
        self.check_fields("POST /releases", body, &allowed);
        for package in body["SelectedPackages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            self.check_fields(
                "POST /releases SelectedPackages",
                &package,
                &["ActionName", "PackageReferenceName", "Version"],
            );
        }
        let field = |name: &str| ci(body, name);
        let Some(project_id) = field("ProjectId")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return self.invalid("No project ID was specified.");
        };
        let Some(project) = self.project(&project_id).cloned() else {
            return not_found(&project_id);
        };
        if let Some(given) = field("SpaceId").and_then(Value::as_str)
            && given != space
        {
            return self.invalid(&format!(
                "The space {given} does not match the space {space} of this request."
            ));
        }
        if project.spec.disabled {
            return self.invalid("The project is disabled, so releases cannot be created");
        }
        let version = field("Version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned();
        if version.is_empty() {
            return self.invalid("Please provide a version number for this release.");
        }
        if !valid_version(&version) {
            return self.invalid(&format!("The release number '{version}' does not appear to be a valid semantic version number. The version must consist of between 1 and 4 number only parts (separated by '.') before the optional pre-release part (after the '-'). e.g. 2, 2.1, 2.4.0.23, 2.4-beta and 1-beta.2"));
        }
        let channel = match field("ChannelId").and_then(Value::as_str) {
            None => self.default_channel(&project.id).unwrap_or_default(),
            Some(id) => match self.channels.iter().find(|c| c.id == id) {
                Some(c) if c.project != project.id => {
                    return self.invalid(&format!(
                        "The channel {} specified for this release belongs to the project {}. It does not belong to the same project as the release.",
                        c.name, c.project
                    ));
                }
                Some(c) => c.id.clone(),
                None => return not_found(id),
            },
        };
        if self
            .releases
            .iter()
            .any(|r| r.project == project.id && r.version == version)
        {
            return self.invalid(&format!("Release '{version}' already exists for this project. Please use a different version, or look at using a mask to auto-increment the number."));
        }
        let selected = field("SelectedPackages")
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        for package in &project.spec.packages {
            let chosen = selected.as_array().and_then(|list| {
                list.iter().find(|s| {
                    let action = ci(s, "ActionName").or_else(|| ci(s, "StepName"));
                    action.and_then(Value::as_str) == Some(package.action_name.as_str())
                        && ci(s, "PackageReferenceName")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            == package.reference_name.clone().unwrap_or_default()
                })
            });
            let has_version = chosen
                .and_then(|s| ci(s, "Version"))
                .and_then(Value::as_str)
                .is_some_and(|v| !v.trim().is_empty());
            if !has_version {
                return self.invalid("A version must be specified for every included package.");
            }
        }
        let release = Release {
            id: format!("Releases-{}", self.id()),
            project: project.id.clone(),
            channel,
            version,
            notes: field("ReleaseNotes")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            packages: selected,
            space: space.to_owned(),
        };
        let answer = release_json(&release);
        self.releases.push(release);
        ok(201, answer)
    }

    fn create_deployment(&mut self, space: &str, body: &Value) -> Answer {
        self.check_fields(
            "POST /deployments",
            body,
            &[
                "ReleaseId",
                "EnvironmentId",
                "ProjectId",
                "SpaceId",
                "Comments",
            ],
        );
        let Some(release) = ci(body, "ReleaseId").and_then(Value::as_str) else {
            return self.invalid("Please specify the release to deploy.");
        };
        let Some(environment) = ci(body, "EnvironmentId").and_then(Value::as_str) else {
            return self.invalid("Please provide a target environment to deploy to.");
        };
        let Some(release) = self.releases.iter().find(|r| r.id == release).cloned() else {
            return not_found(release);
        };
        let Some(environment) = self
            .environments
            .iter()
            .find(|e| e.id == environment)
            .cloned()
        else {
            return not_found(environment);
        };
        let comments = ci(body, "Comments")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.deploy(space, &release, &environment, comments)
    }

    fn deploy(
        &mut self,
        space: &str,
        release: &Release,
        environment: &Environment,
        comments: String,
    ) -> Answer {
        let project_name = self
            .projects
            .iter()
            .find(|p| p.id == release.project)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        if self
            .not_allowed
            .iter()
            .any(|(p, e)| *p == project_name && *e == environment.name)
        {
            return self.invalid("Deployment creation failed.");
        }
        let deployment = Deployment {
            id: format!("Deployments-{}", self.id()),
            release: release.id.clone(),
            environment: environment.id.clone(),
            project: release.project.clone(),
            channel: release.channel.clone(),
            task: format!("ServerTasks-{}", self.id()),
            comments,
            space: space.to_owned(),
        };
        self.tasks.push(Task {
            id: deployment.task.clone(),
            deployment: deployment.id.clone(),
            project: release.project.clone(),
            space: space.to_owned(),
            script: self.script.clone(),
            gets: 0,
        });
        let answer = self.deployment_json(&deployment);
        self.deployments.push(deployment);
        ok(201, answer)
    }

    fn deployment_json(&self, d: &Deployment) -> Value {
        let environment = self
            .environments
            .iter()
            .find(|e| e.id == d.environment)
            .map(|e| e.name.clone())
            .unwrap_or_default();
        json!({
            "Id": d.id, "ReleaseId": d.release, "EnvironmentId": d.environment, "ProjectId": d.project,
            "ChannelId": d.channel, "TaskId": d.task, "Name": format!("Deploy to {environment}"),
            "Comments": d.comments, "Created": "2026-01-01T00:00:00.000+00:00", "SpaceId": d.space,
            "Links": {
                "Self": format!("/api/{}/deployments/{}", d.space, d.id),
                "Release": format!("/api/{}/releases/{}", d.space, d.release),
                "Environment": format!("/api/{}/environments/{}", d.space, d.environment),
                "Task": format!("/api/tasks/{}", d.task),
                "Web": format!("/app#/{}/deployments/{}", d.space, d.id),
            },
        })
    }

    fn task(&mut self, id: &str) -> Answer {
        let Some(task) = self.tasks.iter_mut().find(|t| t.id == id) else {
            return not_found(id);
        };
        let index = task.gets.min(task.script.len().saturating_sub(1));
        task.gets += 1;
        let scripted = task
            .script
            .get(index)
            .cloned()
            .unwrap_or_else(|| "Success".to_owned());
        let (state, message) = match scripted.split_once('(') {
            Some((state, rest)) => (state.to_owned(), rest.trim_end_matches(')').to_owned()),
            None => (scripted.clone(), String::new()),
        };
        let completed = !matches!(state.as_str(), "Queued" | "Executing" | "Cancelling");
        let failed = matches!(state.as_str(), "Failed" | "TimedOut");
        let error = if failed {
            if message.is_empty() {
                "The deployment failed.".to_owned()
            } else {
                message
            }
        } else {
            String::new()
        };
        ok(
            200,
            json!({
                "Id": task.id, "Name": "Deploy", "Description": "Deploy release",
                "Arguments": {"DeploymentId": task.deployment},
                "State": state,
                "Completed": match state.as_str() { "Queued" => "Queued...", "Executing" | "Cancelling" => "Executing...", _ => "2026-01-01T00:01:00.000+00:00" },
                "QueueTime": "2026-01-01T00:00:00.000+00:00",
                "StartTime": if state == "Queued" { Value::Null } else { Value::from("2026-01-01T00:00:01.000+00:00") },
                "CompletedTime": if completed { Value::from("2026-01-01T00:01:00.000+00:00") } else { Value::Null },
                "Duration": "1 minute",
                "ErrorMessage": error,
                "HasBeenPickedUpByProcessor": state != "Queued",
                "IsCompleted": completed,
                "FinishedSuccessfully": state == "Success",
                "HasPendingInterruptions": false,
                "HasWarningsOrErrors": failed,
                "CanRerun": completed,
                "ProjectId": task.project,
                "SpaceId": task.space,
                "Links": {
                    "Self": format!("/api/tasks/{}", task.id),
                    "Web": format!("/app#/{}/tasks/{}", task.space, task.id),
                    "Details": format!("/api/tasks/{}/details{{?verbose,tail,ranges}}", task.id),
                    "Raw": format!("/api/tasks/{}/raw", task.id),
                },
            }),
        )
    }

    fn executions_gone(&self) -> bool {
        let version = self.version.clone();
        if version.starts_with("0.0.0") {
            return false;
        }
        let parts: Vec<u64> = version
            .split(['-', '+'])
            .next()
            .unwrap_or_default()
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        let get = |i: usize| parts.get(i).copied().unwrap_or(0);
        (get(0), get(1), get(2)) < (2022, 3, 5512)
    }

    fn space_checks(&self, space: &str, body: &Value) -> Option<Answer> {
        for name in ["SpaceId", "SpaceIdOrName"] {
            if ci(body, name).and_then(Value::as_str) != Some(space) {
                return Some(self.invalid(&format!("{name} must be {space}.")));
            }
        }
        None
    }

    fn project_named(&self, name: &str) -> Option<Project> {
        self.projects
            .iter()
            .find(|p| {
                p.name.to_lowercase() == name.trim().to_lowercase()
                    || p.slug == name
                    || p.id == name
            })
            .cloned()
    }

    fn create_release_v1(&mut self, space: &str, body: &Value) -> Answer {
        if self.executions_gone() {
            return not_found(&format!("/api/{space}/releases/create/v1"));
        }
        if let Some(refused) = self.space_checks(space, body) {
            return refused;
        }
        let name = ci(body, "ProjectName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(project) = self.project_named(&name) else {
            return ok(
                404,
                json!({"ErrorMessage": format!("Project named '{name}' was not found."), "Errors": []}),
            );
        };
        if project.spec.disabled {
            return self.invalid("The project is disabled, so releases cannot be created");
        }
        let newest = |world: &World, package: &str| {
            world.feeds.get(package).and_then(|v| v.first().cloned())
        };
        let version = match ci(body, "ReleaseVersion").and_then(Value::as_str) {
            Some(v) => v.to_owned(),
            None => match self.next_version(&project) {
                Some(v) => v,
                None => match project
                    .spec
                    .packages
                    .first()
                    .and_then(|p| newest(self, &p.package_id))
                {
                    Some(v) => v,
                    None => {
                        return self.invalid("Please provide a version number for this release.");
                    }
                },
            },
        };
        if let Some(existing) = self
            .releases
            .iter()
            .find(|r| r.project == project.id && r.version == version)
        {
            if ci(body, "IgnoreIfAlreadyExists").and_then(Value::as_bool) == Some(true) {
                return ok(
                    201,
                    json!({"ReleaseId": existing.id, "ReleaseVersion": existing.version}),
                );
            }
            return self.invalid(&format!("Release '{version}' already exists for this project. Please use a different version, or look at using a mask to auto-increment the number."));
        }
        let mut packages = Vec::new();
        for package in &project.spec.packages {
            let version = if package.fixed_version.is_empty() {
                match newest(self, &package.package_id) {
                    Some(v) => v,
                    None => {
                        return self
                            .invalid("A version must be specified for every included package.");
                    }
                }
            } else {
                package.fixed_version.clone()
            };
            packages.push(json!({"ActionName": package.action_name, "PackageReferenceName": package.reference_name.clone().unwrap_or_default(), "Version": version}));
        }
        let release = Release {
            id: format!("Releases-{}", self.id()),
            project: project.id.clone(),
            channel: self.default_channel(&project.id).unwrap_or_default(),
            version,
            notes: ci(body, "ReleaseNotes")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            packages: Value::Array(packages),
            space: space.to_owned(),
        };
        let answer = json!({"ReleaseId": release.id, "ReleaseVersion": release.version});
        self.releases.push(release);
        ok(201, answer)
    }

    fn create_deployment_v1(&mut self, space: &str, body: &Value) -> Answer {
        if self.executions_gone() {
            return not_found(&format!("/api/{space}/deployments/create/untenanted/v1"));
        }
        if let Some(refused) = self.space_checks(space, body) {
            return refused;
        }
        let name = ci(body, "ProjectName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some(version) = ci(body, "ReleaseVersion")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return self.invalid("ReleaseVersion is required.");
        };
        let Some(project) = self.project_named(&name) else {
            return ok(
                404,
                json!({"ErrorMessage": format!("Project named '{name}' was not found."), "Errors": []}),
            );
        };
        let Some(release) = self
            .releases
            .iter()
            .find(|r| r.project == project.id && r.version == version)
            .cloned()
        else {
            return ok(
                404,
                json!({"ErrorMessage": format!("Release '{version}' was not found."), "Errors": []}),
            );
        };
        let names: Vec<String> = ci(body, "EnvironmentNames")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        let mut environments = Vec::new();
        for name in &names {
            match self
                .environments
                .iter()
                .find(|e| e.name.to_lowercase() == name.to_lowercase())
            {
                Some(e) => environments.push(e.clone()),
                None => {
                    return ok(
                        404,
                        json!({"ErrorMessage": format!("Environment named '{name}' was not found."), "Errors": []}),
                    );
                }
            }
        }
        let mut tasks = Vec::new();
        for environment in environments {
            let answer = self.deploy(space, &release, &environment, String::new());
            if answer.status != 201 {
                return answer;
            }
            tasks.push(
                json!({"DeploymentId": answer.body["Id"], "ServerTaskId": answer.body["TaskId"]}),
            );
        }
        ok(200, json!({"DeploymentServerTasks": tasks}))
    }

    fn check_fields(&mut self, what: &str, body: &Value, allowed: &[&str]) {
        if let Some(map) = body.as_object() {
            for name in map.keys() {
                if !allowed.contains(&name.as_str()) {
                    self.violations.push(format!(
                        "{what}: field {name:?} is not spelled as the spec lists it"
                    ));
                }
            }
        }
    }
}

/// A field read case-insensitively, as Octopus reads them.
fn ci<'v>(body: &'v Value, name: &str) -> Option<&'v Value> {
    body.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn process_id(project: &Project) -> String {
    format!("deploymentprocess-{}", project.id)
}

fn space_json(id: &str, name: &str) -> Value {
    json!({"Id": id, "Name": name, "Slug": name.to_lowercase(), "IsDefault": id == "Spaces-1", "Links": {"SpaceHome": format!("/api/{id}")}})
}

fn environment_json(e: &Environment) -> Value {
    json!({"Id": e.id, "Name": e.name, "Slug": e.name.to_lowercase().replace(' ', "-"), "SortOrder": e.sort, "SpaceId": e.space,
        "Links": {"Self": format!("/api/{}/environments/{}", e.space, e.id)}})
}

fn project_json(p: &Project) -> Value {
    json!({"Id": p.id, "Name": p.name, "Slug": p.slug, "DeploymentProcessId": process_id(p),
        "IsDisabled": p.spec.disabled, "IsVersionControlled": p.spec.version_controlled, "SpaceId": p.space,
        "Links": {"Self": format!("/api/{}/projects/{}", p.space, p.id), "Channels": format!("/api/{}/projects/{}/channels", p.space, p.id)}})
}

fn release_json(r: &Release) -> Value {
    json!({
        "Id": r.id, "Version": r.version, "ProjectId": r.project, "ChannelId": r.channel,
        "ReleaseNotes": r.notes, "SelectedPackages": r.packages, "SpaceId": r.space,
        "Assembled": "2026-01-01T00:00:00.000+00:00",
        "ProjectDeploymentProcessSnapshotId": format!("deploymentprocess-{}-s1", r.project),
        "Links": {
            "Self": format!("/api/{}/releases/{}", r.space, r.id),
            "Project": format!("/api/{}/projects/{}", r.space, r.project),
            "Web": format!("/app#/{}/releases/{}", r.space, r.id),
        },
    })
}

fn contains(name: &str, filter: Option<String>) -> bool {
    filter.is_none_or(|f| name.to_lowercase().contains(&f.trim().to_lowercase()))
}

fn valid_version(version: &str) -> bool {
    let (rest, build) = match version.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let label = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    };
    let parts: Vec<&str> = core.split('.').collect();
    (1..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && pre.is_none_or(label)
        && build.is_none_or(label)
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
