// Opt-in probe for scripts/validate_llamacpp.py (not part of kvcalc; never shipped).
//
// Loads one GGUF through llama.cpp's public C API and creates one context per line read from stdin:
//   name n_ctx n_seq_max kv_unified(0|1) type_k type_v fa(on|off|auto) swa_full(0|1) n_batch n_ubatch
// llama.cpp's own log (the memory module's "size = ... MiB" lines) goes to stdout, framed by
// "@@BEGIN name" / "@@END name ok|fail", with one "@@CONTEXT_BYTES name buft context model compute" line per
// buffer type: the exact bytes of llama.cpp's memory module, the weights and the compute buffer
// (llama_get_memory_breakdown).
//
// argv: model.gguf no_alloc(0|1)
#include "llama.h"
#include "llama-ext.h"

#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

static void log_to_stdout(ggml_log_level level, const char * text, void * /*user*/) {
    if (level == GGML_LOG_LEVEL_DEBUG) {
        return;
    }
    fputs(text, stdout);
    fflush(stdout);
}

static bool type_from_name(const std::string & name, ggml_type & out) {
    for (int t = 0; t < GGML_TYPE_COUNT; ++t) {
        const char * n = ggml_type_name((ggml_type) t);
        if (n != nullptr && name == n) {
            out = (ggml_type) t;
            return true;
        }
    }
    return false;
}

int main(int argc, char ** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s model.gguf no_alloc\n", argv[0]);
        return 2;
    }
    llama_log_set(log_to_stdout, nullptr);
    ggml_backend_load_all();
    llama_backend_init();

    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.no_alloc = std::atoi(argv[2]) != 0;
    mp.use_extra_bufts = false;
    if (mp.no_alloc) {
        mp.load_mode = LLAMA_LOAD_MODE_NONE;  // the memory-fit mode maps nothing
        mp.lazy_mode = LLAMA_LAZY_MODE_OFF;
    }
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (model == nullptr) {
        printf("@@MODEL_FAIL\n");
        return 1;
    }
    printf("@@MODEL_OK n_ctx_train=%d\n", llama_model_n_ctx_train(model));

    std::string line;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        std::string name, tk, tv, fa;
        unsigned n_ctx, n_seq, unified, swa_full, n_batch, n_ubatch;
        if (!(in >> name >> n_ctx >> n_seq >> unified >> tk >> tv >> fa >> swa_full >> n_batch >> n_ubatch)) {
            continue;
        }
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = n_ctx;
        cp.n_seq_max = n_seq;
        cp.kv_unified = unified != 0;
        cp.swa_full = swa_full != 0;
        cp.n_batch = n_batch;
        cp.n_ubatch = n_ubatch;
        cp.n_threads = 1;
        cp.n_threads_batch = 1;
        cp.flash_attn_type = fa == "on" ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                           : fa == "off" ? LLAMA_FLASH_ATTN_TYPE_DISABLED : LLAMA_FLASH_ATTN_TYPE_AUTO;
        printf("@@BEGIN %s\n", name.c_str());
        if (!type_from_name(tk, cp.type_k) || !type_from_name(tv, cp.type_v)) {
            printf("@@END %s fail unknown cache type\n", name.c_str());
            continue;
        }
        llama_context * ctx = nullptr;
        std::string err;
        try {
            ctx = llama_init_from_model(model, cp);
        } catch (const std::exception & e) {
            err = e.what();
        }
        if (ctx == nullptr) {
            printf("@@END %s fail %s\n", name.c_str(), err.c_str());
            continue;
        }
        printf("@@N_CTX %s %u %u\n", name.c_str(), llama_n_ctx(ctx), llama_n_ctx_seq(ctx));
        for (const auto & [buft, mb] : llama_get_memory_breakdown(ctx)) {
            printf("@@CONTEXT_BYTES %s %s %zu %zu %zu\n", name.c_str(), ggml_backend_buft_name(buft), mb.context,
                   mb.model, mb.compute);
        }
        printf("@@END %s ok\n", name.c_str());
        llama_free(ctx);
    }
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
