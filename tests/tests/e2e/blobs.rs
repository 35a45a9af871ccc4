//! The blob store as the server wires it (local backend in the data directory), through the
//! test-mode routes: streamed in, streamed out, corruption never served as good data.

use megalis_e2e::server;
use serde_json::Value;

#[tokio::test]
async fn blobs_round_trip_and_corruption_aborts_the_download() {
    let mut s = server().start().await;
    let c = s.client();
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let v: Value = c
        .put(s.url("/_test/blobs"))
        .body(content.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sha = v["sha256"].as_str().unwrap().to_string();
    assert_eq!(v["size"], 3_000_000);

    let back = c
        .get(s.url(&format!("/_test/blobs/{sha}")))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 200);
    assert_eq!(back.bytes().await.unwrap().as_ref(), content.as_slice());

    let r = c
        .get(s.url("/_test/blobs/not-a-digest"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .get(s.url(&format!("/_test/blobs/{}", "0".repeat(64))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // Flip one byte of the stored file: the download must not complete successfully.
    let file = s
        .data_dir
        .join("blobs/sha256")
        .join(&sha[0..2])
        .join(&sha[2..4])
        .join(&sha);
    let mut bytes = std::fs::read(&file).expect("blob file in the data directory");
    bytes[1_500_000] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let outcome = match c.get(s.url(&format!("/_test/blobs/{sha}"))).send().await {
        Err(_) => Err(()),
        Ok(r) if r.status() != 200 => Err(()),
        Ok(r) => r.bytes().await.map_err(|_| ()).map(|b| b.to_vec()),
    };
    assert!(
        outcome.is_err(),
        "a corrupt blob was served as a complete response"
    );
}
