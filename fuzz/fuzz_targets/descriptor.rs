//! Fuzzes the descriptor reader (native YAML and TOSCA): whatever the input, it must return
//! documents and diagnostics, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let loaded = zonal_descriptor::read_yaml_str("fuzz.yaml", text);
        // Rendering every diagnostic must not panic either.
        for d in &loaded.diagnostics {
            let _ = d.to_string();
        }
    }
});
