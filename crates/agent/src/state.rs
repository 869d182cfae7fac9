//! The agent's data directory: who it is and where it lives.
//!
//! ```text
//! <data dir>/            0700
//!   agent.json           the server's URL and the agent's name
//!   credential           the agent's own credential (0600; never logged)
//!   spool/               what the server has not acknowledged (crate::spool)
//!   sources/<commit>/    release commits' files, cached (crate::source)
//!   work/<job id>/       a job's fresh copy and scratch files, removed after it
//! ```
//!
//! On Windows the directory inherits its parent's access rules (the
//! default, `%ProgramData%\tako-agent`, is writable by administrators and
//! the service account only); the mode bits are Unix only.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tako_protocol::agent::Secret;

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory cannot be read or written.
    #[error("data directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `agent.json` or `credential` is not what the agent wrote.
    #[error(
        "data directory {path}: {message}; remove the data directory (or pass another --data-dir) and enroll again"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What enrollment left behind: enough to work without the token again.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// The server's URL as given.
    pub server: String,
    /// The agent's name, as the server keeps it.
    pub name: String,
    /// The agent's credential.
    pub credential: Secret,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("server", &self.server)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct AgentFile {
    server: String,
    name: String,
}

/// An agent's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens (creating, private to this user) the data directory `root`.
    pub fn open(root: &Path) -> Result<DataDir, StateError> {
        fs::create_dir_all(root).map_err(io(root))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(io(root))?;
        }
        Ok(DataDir {
            root: root.to_owned(),
        })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the spool lives.
    pub fn spool_dir(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// Where release commits' files are cached.
    pub fn sources_dir(&self) -> PathBuf {
        self.root.join("sources")
    }

    /// Where jobs run (one directory per job, removed after it).
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    fn agent_file(&self) -> PathBuf {
        self.root.join("agent.json")
    }

    fn credential_file(&self) -> PathBuf {
        self.root.join("credential")
    }

    /// The enrollment kept here, if the agent has enrolled.
    pub fn load(&self) -> Result<Option<Enrollment>, StateError> {
        let agent_path = self.agent_file();
        let text = match fs::read_to_string(&agent_path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io(&agent_path)(error)),
        };
        let agent: AgentFile = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: agent_path.clone(),
            message: e.to_string(),
        })?;
        let credential_path = self.credential_file();
        let credential = match fs::read_to_string(&credential_path) {
            Ok(text) => text.trim().to_owned(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::Corrupt {
                    path: credential_path,
                    message: "the agent's credential is missing".to_owned(),
                });
            }
            Err(error) => return Err(io(&credential_path)(error)),
        };
        if credential.is_empty() {
            return Err(StateError::Corrupt {
                path: credential_path,
                message: "the agent's credential file is empty".to_owned(),
            });
        }
        Ok(Some(Enrollment {
            server: agent.server,
            name: agent.name,
            credential: Secret(credential),
        }))
    }

    /// Keeps `enrollment` (the credential first, readable only by this
    /// user; each file replaced whole, never half-written).
    pub fn save(&self, enrollment: &Enrollment) -> Result<(), StateError> {
        write_private(
            &self.credential_file(),
            format!("{}\n", enrollment.credential.0).as_bytes(),
        )?;
        let agent = AgentFile {
            server: enrollment.server.clone(),
            name: enrollment.name.clone(),
        };
        let text = serde_json::to_string_pretty(&agent).map_err(|e| StateError::Corrupt {
            path: self.agent_file(),
            message: e.to_string(),
        })?;
        write_private(&self.agent_file(), format!("{text}\n").as_bytes())
    }
}

/// Writes `path` atomically (a temporary file renamed over it), mode 0600
/// on Unix from its creation on.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let temporary = path.with_extension("new");
    let _ = fs::remove_file(&temporary);
    {
        let mut options = OpenOptions::new();
        options.create_new(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(io(&temporary))?;
        file.write_all(bytes).map_err(io(&temporary))?;
        file.sync_all().map_err(io(&temporary))?;
    }
    fs::rename(&temporary, path).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_enrollment_is_kept_and_read_back_privately() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(&dir.path().join("agent")).unwrap();
        assert!(data.load().unwrap().is_none());
        let enrollment = Enrollment {
            server: "https://tako.example.com".to_owned(),
            name: "win-01".to_owned(),
            credential: Secret("takoagent_canary".to_owned()),
        };
        data.save(&enrollment).unwrap();
        assert_eq!(data.load().unwrap(), Some(enrollment.clone()));
        assert!(!format!("{enrollment:?}").contains("canary"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(data.root()), 0o700);
            assert_eq!(mode(&data.root().join("credential")), 0o600);
        }
        fs::write(data.root().join("agent.json"), "{").unwrap();
        let error = data.load().unwrap_err().to_string();
        assert!(error.contains("enroll again"), "{error}");
    }
}
