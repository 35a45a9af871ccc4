//! Authentication throughput (issue 3 goals, per core): password logins at OWASP argon2id
//! parameters (≥ 30/s), client-credentials grants (≥ 1,500/s), access-token validations including
//! the revocation check (≥ 20,000/s). In-process, on an SQLite database in a temporary
//! directory; HTTP and TLS are not included.
//!
//! `cargo bench -p megalis-auth --bench auth`

use std::sync::Arc;
use std::time::{Duration, Instant};

use megalis_auth::oidc::{self, GrantType, NewClient};
use megalis_auth::service::TokenRequest;
use megalis_auth::{
    AccountKind, Auth, AuthSettings, LoginOutcome, NewAccount, PractitionerInfo, SigningAlgorithm,
    StaticDirectory, account,
};
use megalis_store::{Database, PoolSettings};

const PASSWORD: &str = "Ty-Kreiz-Kemper-29!";
const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// CPU time used by the whole process so far (user + system, all threads), from
/// `/proc/self/stat`. The machine is shared with other builds: operations per CPU-second is the
/// per-core figure that does not depend on how much CPU the others left us.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name; 100 Hz.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Prints wall-clock and per-CPU-second rates of `n` operations.
fn report(what: &str, n: u64, wall: Duration, cpu: Duration) {
    println!(
        "{what}: {n} in {:.2} s wall, {:.2} s CPU → {:.0}/s wall, {:.0} per CPU-second",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        rate(n, wall),
        rate(n, cpu)
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&Database::default_url(dir.path()), &PoolSettings::default()).unwrap();
    db.migrate().await.unwrap();
    let directory = Arc::new(StaticDirectory::new([PractitionerInfo {
        national_id: "810001234567".into(),
        family_name: "Le Goff".into(),
        given_name: "Anne".into(),
        profession: Some("10".into()),
        specialty: None,
        organisations: vec!["359999001".into()],
    }]));
    let mut settings = AuthSettings::new("https://megalis.bench");
    settings.max_failures = i64::MAX;
    let auth = Auth::start(db.clone(), settings, directory.clone())
        .await
        .unwrap();
    account::create(
        &db,
        &NewAccount {
            username: "alegoff".into(),
            kind: AccountKind::Professional,
            national_id: Some("810001234567".into()),
            organisation: None,
            display_name: "Dr Anne Le Goff".into(),
            roles: vec![],
            password: Some(PASSWORD.into()),
        },
    )
    .await
    .unwrap();
    oidc::add_client(
        &db,
        &NewClient {
            id: "sih-chu".into(),
            name: "SIH".into(),
            secret: SECRET.into(),
            grant_types: vec![GrantType::ClientCredentials],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec!["system/Patient.rs".into()],
            launch_url: None,
        },
    )
    .await
    .unwrap();
    println!("cores available: {cores}");

    // 1. Password logins: one concurrent login per core, for about 5 seconds.
    let cpu0 = cpu_time();
    let started = Instant::now();
    let window = Duration::from_secs(5);
    let mut tasks = vec![];
    for _ in 0..cores {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < window {
                match auth
                    .password_login("alegoff", PASSWORD, None)
                    .await
                    .unwrap()
                {
                    LoginOutcome::Success { .. } => n += 1,
                    other => panic!("{other:?}"),
                }
            }
            n
        }));
    }
    let mut logins = 0;
    for t in tasks {
        logins += t.await.unwrap();
    }
    report(
        "password logins (argon2id m=19456 KiB, t=2, p=1, one task per core)",
        logins,
        started.elapsed(),
        cpu_time() - cpu0,
    );

    // 2 and 3, for each access-token algorithm (`auth.access_token_algorithm`): ES256 is cheap
    //    to sign and dear to verify, RS256 the reverse.
    let req = TokenRequest {
        grant_type: "client_credentials".into(),
        ..Default::default()
    };
    let mut last = String::new();
    for alg in [SigningAlgorithm::ES256, SigningAlgorithm::RS256] {
        let auth = Auth::start(
            db.clone(),
            AuthSettings {
                access_token_algorithm: alg,
                ..auth.settings.clone()
            },
            directory.clone(),
        )
        .await
        .unwrap();
        // 2. Client-credentials grants: client authentication (database read, secret check)
        //    and one signature, one core.
        let n = if alg == SigningAlgorithm::ES256 {
            5_000u64
        } else {
            2_000
        };
        let cpu0 = cpu_time();
        let started = Instant::now();
        for _ in 0..n {
            let client = auth.authenticate_client("sih-chu", SECRET).await.unwrap();
            last = auth.token(&client, &req).await.unwrap().access_token;
        }
        report(
            &format!("client-credentials grants (client authentication + {alg:?} token, one task)"),
            n,
            started.elapsed(),
            cpu_time() - cpu0,
        );
        // 3. (a) Token validations including the revocation list and grant checks, one core,
        //    cold: every token is new, so its signature is verified.
        let client = auth.authenticate_client("sih-chu", SECRET).await.unwrap();
        let tokens: Vec<String> = (0..3_000)
            .map(|_| auth.client_credentials(&client, &req).unwrap().access_token)
            .collect();
        let cpu0 = cpu_time();
        let started = Instant::now();
        for t in &tokens {
            auth.validate_access_token(t).unwrap();
        }
        report(
            &format!(
                "access-token validations, {alg:?} signature verified (new tokens), revocation \
                 and grant checks"
            ),
            tokens.len() as u64,
            started.elapsed(),
            cpu_time() - cpu0,
        );
    }
    //    (b) warm: a token already verified once (a client reusing its token).
    let n = 1_000_000u64;
    let cpu0 = cpu_time();
    let started = Instant::now();
    for _ in 0..n {
        auth.validate_access_token(&last).unwrap();
    }
    report(
        "access-token validations, already-verified token, revocation and grant checks",
        n,
        started.elapsed(),
        cpu_time() - cpu0,
    );
}
