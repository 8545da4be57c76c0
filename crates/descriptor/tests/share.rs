//! `share: [provider, …]` on a Service: the providers whose services may be served by
//! configurations overlaid on its instances. Explicit names only, each once; the writer keeps
//! the list and reading it back gives the same model.

use zonal_descriptor::{parse_manifest, read_yaml_str, write_documents};
use zonal_model::Document;

const EPG: &str = "kind: Service\nname: epg\nowner: bell-labs\nshare: [acme, globex]\ncomponents:\n  - name: streamer\n    supports_overlay: true\n";

fn diagnostics(text: &str) -> Vec<String> {
    read_yaml_str("s.yaml", text).diagnostics.iter().map(|d| d.to_string()).collect()
}

#[test]
fn share_names_providers_and_round_trips() {
    let service = parse_manifest("s.yaml", EPG).expect("a valid manifest");
    assert_eq!(service.share, ["acme", "globex"]);
    let written = write_documents(&[Document::Service(service.clone())]);
    assert!(written.contains("share:\n- acme\n- globex\n"), "{written}");
    assert_eq!(parse_manifest("again.yaml", &written).expect("written back"), service);
    // Without `share` nothing is shared, and nothing is written.
    let plain = parse_manifest("s.yaml", &EPG.replace("share: [acme, globex]\n", "")).expect("valid");
    assert!(plain.share.is_empty());
    assert!(!write_documents(&[Document::Service(plain)]).contains("share"));
}

#[test]
fn share_refuses_wildcards_bad_names_and_repeats_with_their_position() {
    assert_eq!(
        diagnostics(&EPG.replace("[acme, globex]", "[\"*\"]")),
        ["s.yaml:4:9: share[0]: expected a provider's name; `*` (every provider) is not accepted: name each provider that may use this service's instances"]
    );
    // A provider's name follows the rule for user names (`zonal_model::names`), which says
    // what it expects.
    let got = diagnostics(&EPG.replace("[acme, globex]", "[acme, \"bad name\", acme]"));
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("s.yaml:4:15: share[1]: expected a provider's name: ") && got[0].contains("\"bad name\""),
        "{got:#?}"
    );
    assert_eq!(got[1], "s.yaml:4:27: share[2]: provider \"acme\" is listed twice; name each provider once");
    assert_eq!(diagnostics(&EPG.replace("[acme, globex]", "acme")), ["s.yaml:4:8: share: expected a list, found acme"]);
}
