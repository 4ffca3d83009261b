//! Initialization and TLS under LD_PRELOAD: the allocator's first calls come
//! from another preloaded library's constructor and the threads it starts
//! before main (c/early_lib.c, c/early_init.c); and ld.so allocates with our
//! malloc from inside TLS access when threads touch the TLS of 30 freshly
//! dlopened libraries (c/tls_dlopen.c), where a malloc that used dynamic TLS
//! itself could recurse.

use allocator_tests::preload::*;

#[test]
fn first_calls_from_a_constructor_and_its_threads() {
    let early = c_library("early_lib");
    let preload = format!("{} {}", early.display(), library().display());
    for round in 0..5 {
        let run = Exec::new(c_program("early_init")).env("LD_PRELOAD", &preload).run();
        assert_success(&run, &format!("early_init round {round} with LD_PRELOAD={preload}"));
    }
}

#[test]
fn tls_of_dlopened_libraries_from_many_threads() {
    let lib = c_library("tls_lib");
    let dir = programs_dir().join(format!("tls-copies-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the copies directory");
    const COPIES: usize = 30;
    for i in 0..COPIES {
        std::fs::copy(&lib, dir.join(format!("tls_{i}.so"))).expect("copy libtls_lib.so");
    }
    let dir_arg = dir.to_str().expect("UTF-8 path").to_string();
    let run = run_checked("tls_dlopen", None, "0xaa", &[&dir_arg, &COPIES.to_string()]);
    assert!(run.stdout.contains("touched 30 TLS libraries"), "{}", describe(&run));
    run_glibc_control("tls_dlopen", &[&dir_arg, &COPIES.to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
}
