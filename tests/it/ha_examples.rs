//! The high-availability deployment examples (`examples/kubernetes/resetd-ha.yaml`,
//! `examples/kubernetes/etcd.yaml`, `examples/systemd/resetd-ha.service`):
//! every resetd flag and environment variable they name is one resetd
//! accepts, their pieces fit together (endpoints, Secrets, mounts, the etcd
//! members the endpoints name), and they keep the single instance's
//! hardening. Their sandbox run and Kubernetes' own schemas are
//! `.ci/lint-examples.sh`'s.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::ops::{unit_settings, yaml_documents};
use crate::support::{repo_root, resetd, run};

const EXAMPLES: &[&str] = &[
    "examples/kubernetes/resetd.yaml",
    "examples/kubernetes/resetd-ha.yaml",
    "examples/kubernetes/etcd.yaml",
    "examples/systemd/resetd.service",
    "examples/systemd/resetd-ha.service",
];

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap()
}

fn documents(path: &str) -> Vec<Value> {
    yaml_documents(&repo_root().join(path))
}

/// The documents of a manifest by kind and name.
fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The long flags a `--help` text defines (its option lines).
fn help_flags(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter_map(|l| {
            let l = l
                .strip_prefix('-')
                .filter(|l| !l.starts_with('-'))
                .and_then(|l| l.split_once(", ").map(|(_, rest)| rest))
                .unwrap_or(l);
            let name = l.strip_prefix("--")?;
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(name.len());
            Some(format!("--{}", &name[..end]))
        })
        .collect()
}

/// Words of `text` that look like resetd's environment variables.
fn env_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("RESETD_") || w.starts_with("IPROYAL_"))
        .map(str::to_owned)
        .collect()
}

/// The long flag of a command-line word (`--config=/x` and `--config` give
/// `--config`), if it is one.
fn flag_of(word: &str) -> Option<String> {
    word.starts_with("--")
        .then(|| word.split('=').next().unwrap_or(word).to_owned())
}

/// The `resetd run` command lines of the examples: the args of every
/// container that runs resetd, and every unit's ExecStart.
fn command_lines() -> Vec<(String, Vec<String>)> {
    let mut lines = Vec::new();
    for path in EXAMPLES {
        if path.ends_with(".service") {
            let settings = unit_settings(&read(path));
            for (key, value) in settings {
                if key == "ExecStart" {
                    let words: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
                    assert!(words[0].ends_with("/resetd"), "{path}: {words:?}");
                    lines.push((path.to_string(), words[1..].to_vec()));
                }
            }
        } else {
            for doc in documents(path) {
                let containers = doc["spec"]["template"]["spec"]["containers"].as_array();
                for container in containers.into_iter().flatten() {
                    if container["image"].as_str().unwrap().contains("resetd") {
                        lines.push((path.to_string(), strings(&container["args"])));
                    }
                }
            }
        }
    }
    lines
}

#[test]
fn every_flag_and_variable_the_examples_name_is_one_resetd_accepts() {
    let (code, run_help, _) = run(resetd().args(["run", "--help"]));
    assert_eq!(code, 0);
    let (code, help, _) = run(resetd().arg("--help"));
    assert_eq!(code, 0);
    let flags = help_flags(&run_help);
    assert!(
        flags.contains("--config") && flags.contains("--token-file"),
        "the help parser found {flags:?}"
    );
    let variables = env_names(&format!("{help}\n{run_help}"));

    let mut named = BTreeSet::new();
    let lines = command_lines();
    // Both platforms, single and HA.
    assert!(lines.len() >= 4, "{lines:?}");
    for (path, argv) in &lines {
        assert_eq!(argv[0], "run", "{path}");
        for word in &argv[1..] {
            if let Some(flag) = flag_of(word) {
                named.insert((flag, path.clone()));
            }
        }
    }
    // Variables anywhere in the examples, comments included: an operator
    // copies those too (the systemd unit's EnvironmentFile is described in
    // its header).
    for path in EXAMPLES {
        for name in env_names(&read(path)) {
            named.insert((name, path.to_string()));
        }
    }

    let mut problems = Vec::new();
    for (name, path) in &named {
        if !(flags.contains(name) || variables.contains(name)) {
            problems.push(format!(
                "{path} names {name}, which `resetd run --help` and `resetd --help` do not"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_help_parser_reads_clap_option_lines() {
    let flags = help_flags(
        "Options:\n      --config <CONFIG>\n          The config file\n  -h, --help\n\
         \x20     --dry-run\n          Send nothing: see --once\n",
    );
    assert_eq!(
        flags,
        ["--config", "--dry-run", "--help"]
            .map(str::to_owned)
            .into()
    );
    assert_eq!(
        env_names("[env: RESETD_API_BASE=]\n  IPROYAL_API_TOKEN  the token; $(RESETD_X)"),
        ["IPROYAL_API_TOKEN", "RESETD_API_BASE", "RESETD_X"]
            .map(str::to_owned)
            .into()
    );
    assert_eq!(flag_of("--member=$(POD_NAME)").as_deref(), Some("--member"));
    assert_eq!(flag_of("run"), None);
}

/// The value of `--flag=value` or `--flag value` on a command line.
fn arg_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter().enumerate().find_map(|(i, word)| {
        if let Some(value) = word.strip_prefix(&format!("{flag}=")) {
            Some(value)
        } else if word == flag {
            argv.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

#[test]
fn the_kubernetes_ha_example_fits_together_and_keeps_the_single_instances_hardening() {
    let docs = documents("examples/kubernetes/resetd-ha.yaml");
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    for absent in ["Service", "Ingress", "PersistentVolumeClaim"] {
        // No volume: the status is in etcd. No Service: /status lists hashes.
        assert!(!kinds.contains(absent), "{absent} in {kinds:?}");
    }
    let deployment = of_kind(&docs, "Deployment");
    let spec = &deployment["spec"];
    assert!(spec["replicas"].as_u64().unwrap() >= 2);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], labels);

    let pdb = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);

    let pod = &spec["template"]["spec"];
    let anti =
        &pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(&anti["labelSelector"]["matchLabels"], labels);

    // The single instance's hardening, kept: the same container security
    // context and resources, the same pod settings (but fsGroup: no volume
    // to write).
    let single = documents("examples/kubernetes/resetd.yaml");
    let single_pod = &of_kind(&single, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let single_container = &single_pod["containers"][0];
    assert_eq!(pod["containers"].as_array().unwrap().len(), 1);
    for key in ["securityContext", "resources", "image", "ports"] {
        assert_eq!(container[key], single_container[key], "container {key}");
    }
    for key in [
        "automountServiceAccountToken",
        "enableServiceLinks",
        "terminationGracePeriodSeconds",
    ] {
        assert_eq!(pod[key], single_pod[key], "pod {key}");
    }
    let mut pod_security = single_pod["securityContext"].clone();
    pod_security.as_object_mut().unwrap().remove("fsGroup");
    assert_eq!(pod["securityContext"], pod_security);

    let argv = strings(&container["args"]);
    assert!(
        arg_value(&argv, "--status").is_none(),
        "no status file with --etcd"
    );
    let env = container["env"].as_array().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}"))
    };
    // The member is the pod: $(POD_NAME), from the downward API.
    assert_eq!(arg_value(&argv, "--member"), Some("$(POD_NAME)"));
    assert_eq!(
        var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    for word in &argv {
        if let Some(start) = word.find("$(") {
            let name = &word[start + 2..word[start..].find(')').unwrap() + start];
            var(name);
        }
    }

    // The endpoints from the ConfigMap in this file; https only.
    let from = &var("RESETD_ETCD_ENDPOINTS")["valueFrom"]["configMapKeyRef"];
    let endpoints = find(&docs, "ConfigMap", from["name"].as_str().unwrap())["data"]
        [from["key"].as_str().unwrap()]
    .as_str()
    .unwrap();
    let endpoints: Vec<&str> = endpoints.split(',').collect();
    assert!(
        endpoints.iter().all(|e| e.starts_with("https://")),
        "{endpoints:?}"
    );
    // The credentials from a Secret in this file, which has those keys.
    for name in ["RESETD_ETCD_USERNAME", "RESETD_ETCD_PASSWORD"] {
        let from = &var(name)["valueFrom"]["secretKeyRef"];
        let secret = find(&docs, "Secret", from["name"].as_str().unwrap());
        assert!(
            secret["stringData"][from["key"].as_str().unwrap()].is_string(),
            "{name}: {from}"
        );
    }
    // The token and the TLS files: each path is a key of the Secret mounted
    // at its directory.
    let mounts = container["volumeMounts"].as_array().unwrap();
    for flag in ["--token-file", "--etcd-ca", "--etcd-cert", "--etcd-key"] {
        let path = arg_value(&argv, flag).unwrap_or_else(|| panic!("no {flag}"));
        let (dir, file) = path.rsplit_once('/').unwrap();
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == dir)
            .unwrap_or_else(|| panic!("{flag}: nothing mounted at {dir}"));
        assert_eq!(mount["readOnly"], true);
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        let secret = find(
            &docs,
            "Secret",
            volume["secret"]["secretName"].as_str().unwrap(),
        );
        assert!(secret["stringData"][file].is_string(), "{flag}: {file}");
    }
    // Probes on the port resetd listens on: ready = could take over.
    let port = arg_value(&argv, "--listen")
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    assert_eq!(container["ports"][0]["containerPort"].to_string(), port);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");

    // The endpoints are the members of etcd.yaml: etcd-N.<its headless
    // Service>, on its client port, one per replica.
    let etcd = documents("examples/kubernetes/etcd.yaml");
    let set = of_kind(&etcd, "StatefulSet");
    let service = find(
        &etcd,
        "Service",
        set["spec"]["serviceName"].as_str().unwrap(),
    );
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["publishNotReadyAddresses"], true);
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    assert_eq!(replicas, 3, "a quorum that survives one member");
    assert_eq!(set["spec"]["podManagementPolicy"], "Parallel");
    assert!(set["spec"]["volumeClaimTemplates"][0]["spec"].is_object());
    let expected: Vec<String> = (0..replicas)
        .map(|i| {
            format!(
                "https://{}-{i}.{}:2379",
                set["metadata"]["name"].as_str().unwrap(),
                service["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(endpoints, expected);
    let etcd_args = strings(&set["spec"]["template"]["spec"]["containers"][0]["command"]);
    assert!(etcd_args.contains(&"--client-cert-auth".to_owned()));
    let cluster = arg_value(&etcd_args, "--initial-cluster").unwrap();
    assert_eq!(cluster.split(',').count() as u64, replicas, "{cluster}");
    assert_eq!(
        of_kind(&etcd, "PodDisruptionBudget")["spec"]["maxUnavailable"],
        1
    );

    // The network policies let resetd reach etcd's client port, and etcd
    // admit it.
    let egress = &of_kind(&docs, "NetworkPolicy")["spec"]["egress"];
    let etcd_labels = &set["spec"]["template"]["metadata"]["labels"];
    assert!(
        egress.as_array().unwrap().iter().any(|rule| {
            rule["to"][0]["podSelector"]["matchLabels"] == *etcd_labels
                && rule["ports"][0]["port"] == 2379
        }),
        "{egress}"
    );
    let ingress = &of_kind(&etcd, "NetworkPolicy")["spec"]["ingress"];
    assert!(
        ingress.as_array().unwrap().iter().any(|rule| {
            rule["from"][0]["podSelector"]["matchLabels"] == *labels
                && rule["ports"][0]["port"] == 2379
        }),
        "{ingress}"
    );
}

#[test]
fn the_systemd_ha_unit_keeps_the_single_units_sandbox() {
    let single = unit_settings(&read("examples/systemd/resetd.service"));
    let ha = unit_settings(&read("examples/systemd/resetd-ha.service"));
    let get = |settings: &[(String, String)], key: &str| -> Vec<String> {
        settings
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    // Every setting of the single unit but what HA changes, with the same
    // values: the sandbox, the stop and reload, the logs.
    let changed = ["Description", "ExecStart", "LoadCredential", "Restart"];
    for (key, _) in &single {
        if key == "Environment" {
            let ha_env = get(&ha, key);
            for value in get(&single, key) {
                assert!(ha_env.contains(&value), "Environment={value}");
            }
        } else if !changed.contains(&key.as_str()) {
            assert_eq!(get(&ha, key), get(&single, key), "{key}");
        }
    }
    assert_eq!(get(&ha, "Restart"), ["always"]);
    assert_eq!(get(&ha, "StartLimitIntervalSec"), ["0"], "never gives up");
    assert_eq!(get(&ha, "EnvironmentFile"), ["/etc/resetd/ha.env"]);
    // The token and etcd's TLS files are credentials, each passed from the
    // credentials directory under its own name.
    let exec: Vec<String> = get(&ha, "ExecStart")[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let credentials = get(&ha, "LoadCredential");
    for (flag, name) in [
        ("--token-file", "token"),
        ("--etcd-ca", "etcd-ca"),
        ("--etcd-cert", "etcd-cert"),
        ("--etcd-key", "etcd-key"),
    ] {
        assert_eq!(
            arg_value(&exec, flag),
            Some(format!("${{CREDENTIALS_DIRECTORY}}/{name}").as_str())
        );
        assert!(
            credentials
                .iter()
                .any(|c| c.starts_with(&format!("{name}:/etc/resetd/"))),
            "{name}: {credentials:?}"
        );
    }
    assert_eq!(arg_value(&exec, "--member"), Some("%H"));
    // The import source is off unless the migration turns it on: the
    // variable's default is empty, and nothing else names a status file.
    assert!(arg_value(&exec, "--status").is_none());
    assert_eq!(exec.last().map(String::as_str), Some("$IMPORT_STATUS"));
    assert_eq!(get(&ha, "Environment")[0], "IMPORT_STATUS=");
}
