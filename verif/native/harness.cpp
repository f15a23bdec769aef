// Native Verilator harness for SparseFlow's stream engines: no Python in the cycle loop.
//
// It does, cycle for cycle, what the cocotb testbenches do (verif/eie_tb.py for SF_EIE,
// verif/sparse24_tb.py otherwise): the same stream handshakes, the same pacing decisions
// drawn from the same seeded generator (SplitMix64, mirrored by verif.streams.Pacer), the
// same moments at which the counters are read. So for the same case both backends return
// identical outputs and identical counters (tests/test_native.py holds them to it).
//
// Input (--in, little-endian int64): n_jobs, then per job: n_load, the load payloads,
// rows, n_vec, cols, the n_vec*cols packed x payloads (vector by vector), each as
// SF_X_CHUNKS int64 (low 64 bits first; an x port wider than 64 bits, the EIE wide input).
// Output (--out, int64): per job, per vector: rows results (sign-extended), then
//   SF_EIE: cycles, total_cycles, busy[n_pes], stall[n_pes], vectors
//   lanes : (at the end of the job) n_log, n_log x (vectors, cycles), vectors, busy, total_cycles
// A one-line status goes to --status: "ok <sim_cycles> <seconds>" or "error <message>".
// Exit status: 0 ok, 3 a stream stalled (watchdog) or a protocol error, 2 bad arguments/files.
// SF_MUTSEL: the DUT has a `mutsel` input (a mutated netlist, verif/mutation.py); --mutsel
// picks the active mutant (0: the original design).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "Vdut.h"
#include "verilated.h"
#ifdef SF_TRACE
#include "verilated_fst_c.h"
#endif

// Amaranth names stream signals x__valid etc.; Verilator escapes "__" in C++ member names.
#define SF_PORT(stream, sig) stream##___05F##sig

#ifndef SF_COUNTER_BITS
#error "SF_COUNTER_BITS (rtl.common.protocol.COUNTER_BITS) comes from verif.native.build"
#endif
static_assert(SF_COUNTER_BITS >= 1 && SF_COUNTER_BITS <= 64, "a counter is read into 64 bits");

#ifndef SF_NPES
#define SF_NPES 1
#endif

// ---- port access for any Verilator port type (CData..QData, VlWide) -------------------
template <typename T> static inline void put(T& port, uint64_t v) { port = static_cast<T>(v); }
template <std::size_t N> static inline void put(VlWide<N>& port, uint64_t v) {
    port[0] = static_cast<uint32_t>(v);
    if (N > 1) port[1] = static_cast<uint32_t>(v >> 32);
    for (std::size_t k = 2; k < N; ++k) port[k] = 0;
}
template <typename T> static inline uint64_t bits(const T& port, int lo, int width) {
    uint64_t v = static_cast<uint64_t>(port) >> lo;
    return width >= 64 ? v : v & ((uint64_t(1) << width) - 1);
}
template <std::size_t N> static inline uint64_t bits(const VlWide<N>& port, int lo, int width) {
    uint64_t v = 0;
    for (int b = 0; b < width; ++b) {
        int i = lo + b;
        if (static_cast<std::size_t>(i / 32) < N && ((port[i / 32] >> (i % 32)) & 1)) v |= uint64_t(1) << b;
    }
    return v;
}

// ---- the pacing generator: SplitMix64, the same sequence as verif.streams.Pacer ----------
struct Pacer {
    double p;
    uint64_t s;
    Pacer(double p_, uint64_t seed) : p(p_), s(seed) {}
    bool go() {
        if (p >= 1.0) return true;
        uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0) < p;
    }
};

#ifndef SF_X_CHUNKS
#define SF_X_CHUNKS 1
#endif

// A source (drives valid/payload): like verif.streams.StreamSource. Each word is `stride`
// int64 chunks, low bits first.
struct Source {
    Pacer pacer;
    const int64_t* words = nullptr;
    size_t n = 0, next = 0, stride = 1;
    bool valid = false;
    explicit Source(Pacer p, size_t stride_ = 1) : pacer(p), stride(stride_) {}
    void start(const int64_t* w, size_t count) { words = w; n = count; next = 0; }
    bool busy() const { return next < n; }
    // The payload while valid is low (idle, and after the last word): two words of the stream
    // XORed (in range, but not a word of the stream: a repeated load word would be a harmless
    // rewrite), so a design that takes a word without valid, or reads the payload outside a
    // transfer, gets a wrong one (found by mutation screening: a held last word hid it).
    uint64_t idle_payload(size_t c = 0) const {
        return n ? static_cast<uint64_t>(words[(next * 7 + 3) % n * stride + c] ^ words[(next * 5 + 1) % n * stride + c]) : 0;
    }
    // Chunk c of what the source drives this cycle (0 beyond the word).
    uint64_t chunk(size_t c) const {
        if (c >= stride) return 0;
        return valid ? static_cast<uint64_t>(words[next * stride + c]) : idle_payload(c);
    }
    // Called once per cycle before the DUT settles: decide what to drive this cycle.
    void drive() {
        if (!valid && next < n && pacer.go()) valid = true;
    }
    // Called after the clock edge with whether the handshake took place at it.
    void edge(bool fired) {
        if (fired) { valid = false; ++next; }
    }
};

// Drive a source's payload port (any width).
template <typename T> static inline void put_source(T& port, const Source& s) { put(port, s.chunk(0)); }
template <std::size_t N> static inline void put_source(VlWide<N>& port, const Source& s) {
    for (std::size_t k = 0; k < N; ++k) {
        const uint64_t c = s.chunk(k / 2);
        port[k] = static_cast<uint32_t>(k % 2 ? c >> 32 : c);
    }
}

// A sink (drives ready): like verif.streams.StreamSink.receive (pacer drawn every cycle).
struct Sink {
    Pacer pacer;
    bool active = false, ready = false;
    explicit Sink(Pacer p) : pacer(p) {}
    void drive() { ready = active ? pacer.go() : false; }
};

struct Args {
    std::string in, out, status, waves;
    double p_load = 1, p_x = 1, p_y = 1;
    uint64_t s_load = 0, s_x = 0, s_y = 0;
    int out_bits = 16;
    uint64_t watchdog = 100000;
    uint64_t mutsel = 0;
    uint64_t idle = 0;  // cycles with every stream idle after reset, before the first job
};

static FILE* g_status = nullptr;
static void finish_status(const std::string& line) {
    if (g_status) { std::fprintf(g_status, "%s\n", line.c_str()); std::fclose(g_status); g_status = nullptr; }
}
[[noreturn]] static void fail(int code, const std::string& msg) {
    std::fprintf(stderr, "harness: %s\n", msg.c_str());
    finish_status("error " + msg);
    std::exit(code);
}

static std::vector<int64_t> read_all(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) fail(2, "cannot open " + path);
    std::vector<int64_t> v;
    int64_t buf[4096];
    size_t got;
    while ((got = std::fread(buf, sizeof(int64_t), 4096, f)) > 0) v.insert(v.end(), buf, buf + got);
    std::fclose(f);
    return v;
}

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--in") a.in = v;
        else if (k == "--out") a.out = v;
        else if (k == "--status") a.status = v;
        else if (k == "--waves") a.waves = v;
        else if (k == "--p-load") a.p_load = std::atof(v.c_str());
        else if (k == "--p-x") a.p_x = std::atof(v.c_str());
        else if (k == "--p-y") a.p_y = std::atof(v.c_str());
        else if (k == "--seed-load") a.s_load = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--seed-x") a.s_x = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--seed-y") a.s_y = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--out-bits") a.out_bits = std::atoi(v.c_str());
        else if (k == "--watchdog") a.watchdog = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--mutsel") a.mutsel = std::strtoull(v.c_str(), nullptr, 10);
        else if (k == "--idle") a.idle = std::strtoull(v.c_str(), nullptr, 10);
        else fail(2, "unknown argument " + k);
    }
    if (!a.status.empty()) g_status = std::fopen(a.status.c_str(), "w");
    const std::vector<int64_t> in = read_all(a.in);
    FILE* out = std::fopen(a.out.c_str(), "wb");
    if (!out) fail(2, "cannot write " + a.out);
    std::vector<int64_t> obuf;
    obuf.reserve(1 << 16);
    auto emit = [&](int64_t v) {
        obuf.push_back(v);
        if (obuf.size() >= (1 << 16)) { std::fwrite(obuf.data(), sizeof(int64_t), obuf.size(), out); obuf.clear(); }
    };

    auto ctx = std::make_unique<VerilatedContext>();
#ifdef SF_TRACE
    ctx->traceEverOn(true);
#endif
    auto dut = std::make_unique<Vdut>(ctx.get());
#ifdef SF_TRACE
    std::unique_ptr<VerilatedFstC> tfp;
    if (!a.waves.empty()) { tfp = std::make_unique<VerilatedFstC>(); dut->trace(tfp.get(), 99); tfp->open(a.waves.c_str()); }
#endif
    uint64_t cycle = 0, t = 0;
    auto dump = [&]() {
#ifdef SF_TRACE
        if (tfp) tfp->dump(t);
#endif
        ++t;
    };
    auto edge = [&]() {  // rising edge, then the clock low again for the next cycle's inputs
        dut->clk = 1; dut->eval(); dump();
        dut->clk = 0;
        ++cycle;
    };

    Source load(Pacer(a.p_load, a.s_load)), xs(Pacer(a.p_x, a.s_x), SF_X_CHUNKS);
    Sink ys(Pacer(a.p_y, a.s_y));
    const int ob = a.out_bits;
    const int64_t sign = int64_t(1) << (ob - 1);

#ifdef SF_MUTSEL
    put(dut->mutsel, a.mutsel);  // held for the whole run, reset included
#endif
    // Reset as the testbenches do: two edges with rst high.
    dut->clk = 0; dut->rst = 1;
    dut->SF_PORT(load, valid) = 0; dut->SF_PORT(x, valid) = 0; dut->SF_PORT(y, ready) = 0;
    dut->eval(); dump();
    for (int i = 0; i < 2; ++i) { edge(); dut->eval(); dump(); }
    dut->rst = 0;
#ifdef SF_EIE
    edge();  // verif/eie_tb.py waits one more edge after reset
#endif

    // Idle cycles (every valid and ready low): the free-running time counters reach their high
    // bits before the first job (verif.cases.lane_idle_case; not counted in the run's cycles).
    for (uint64_t i = 0; i < a.idle; ++i) { dut->eval(); edge(); }

    size_t pos = 0;
    auto need = [&](size_t k) { if (pos + k > in.size()) fail(2, "case file truncated"); };
    need(1);
    const int64_t n_jobs = in[pos++];
    const auto t_wall = std::chrono::steady_clock::now();
    const uint64_t c_start = cycle;
    uint64_t idle = 0;  // cycles since the last handshake on any stream (the watchdog)

    for (int64_t job = 0; job < n_jobs; ++job) {
        need(1);
        const int64_t n_load = in[pos++];
        need(n_load);
        const int64_t* load_words = &in[pos];
        pos += n_load;
        need(3);
        const int64_t rows = in[pos++], n_vec = in[pos++], cols = in[pos++];
        need(n_vec * cols * SF_X_CHUNKS);
        const int64_t* x_words = &in[pos];
        pos += n_vec * cols * SF_X_CHUNKS;

        load.start(load_words, n_load);
        bool loading = n_load > 0, x_started = false;
        int64_t got_total = 0, vec = 0, got_vec = 0;
        bool gap = false;  // SF_EIE: ready low for the cycle after each vector, counters read then
        std::vector<int64_t> yv;
#ifdef SF_EIE
        auto emit_counters = [&]() {
            emit(static_cast<int64_t>(dut->cycles));
            emit(static_cast<int64_t>(dut->total_cycles));
            for (int k = 0; k < SF_NPES; ++k) emit(static_cast<int64_t>(bits(dut->busy, SF_COUNTER_BITS * k, SF_COUNTER_BITS)));
            for (int k = 0; k < SF_NPES; ++k) emit(static_cast<int64_t>(bits(dut->stall, SF_COUNTER_BITS * k, SF_COUNTER_BITS)));
            emit(static_cast<int64_t>(dut->vectors));
        };
#else
        int64_t first_x = -1, last_y = -1, vectors_seen = 0;
        std::vector<int64_t> log;
        bool held = false;
        uint64_t held_payload = 0;
        auto log_vectors = [&]() {  // (vectors, cycles) each time the vector counter moves
            const int64_t v_now = static_cast<int64_t>(dut->vectors);
            if (v_now != vectors_seen) {
                vectors_seen = v_now;
                log.push_back(v_now);
                log.push_back(static_cast<int64_t>(dut->cycles));
            }
        };
#endif
        if (!loading) { xs.start(x_words, n_vec * cols); ys.active = n_vec > 0; x_started = true; }
        while (got_total < rows * n_vec || loading) {
            load.drive();
            xs.drive();
            ys.active = x_started && !gap && got_total < rows * n_vec;
            ys.drive();
            dut->SF_PORT(load, valid) = load.valid;
            put_source(dut->SF_PORT(load, payload), load);
            dut->SF_PORT(x, valid) = xs.valid;
            put_source(dut->SF_PORT(x, payload), xs);
            dut->SF_PORT(y, ready) = ys.ready;
            dut->eval();
            // Sample the handshakes (cocotb's ReadOnly before the edge).
            const bool f_load = load.valid && dut->SF_PORT(load, ready);
            const bool f_x = xs.valid && dut->SF_PORT(x, ready);
            const bool yvalid = dut->SF_PORT(y, valid);
            const bool f_y = ys.ready && yvalid;
#ifdef SF_EIE
            if (gap) {  // the cycle after a vector's last result: read the counters
                emit_counters();
                gap = false;
            }
#else
            if (f_x && first_x < 0) first_x = static_cast<int64_t>(cycle);
            {
                const uint64_t p = bits(dut->SF_PORT(y, payload), 0, ob + 1);
                if (held && p != held_payload)
                    fail(3, "protocol: y payload changed while stalled at cycle " + std::to_string(cycle - c_start));
                held = yvalid && !ys.ready;
                held_payload = p;
            }
            if (f_y) last_y = static_cast<int64_t>(cycle);
            log_vectors();
#endif
            if (f_y) {
                const uint64_t data = bits(dut->SF_PORT(y, payload), 0, ob);
                const int last = static_cast<int>(bits(dut->SF_PORT(y, payload), ob, 1));
                int64_t y = static_cast<int64_t>(data);
                if (ob < 64 && (y & sign)) y -= (sign << 1);
                yv.push_back(y);
                const int want_last = (got_vec == rows - 1);
                if (last != want_last)
                    fail(3, "protocol: y.last is " + std::to_string(last) + " on row " + std::to_string(got_vec) +
                                " of vector " + std::to_string(vec) + " (job " + std::to_string(job) + ")");
                ++got_total;
                if (++got_vec == rows) {
                    for (int64_t r = 0; r < rows; ++r) emit(yv[r]);
                    yv.clear();
                    got_vec = 0;
                    ++vec;
#ifdef SF_EIE
                    gap = true;
#endif
                }
            }
            edge();  // the clock goes low with the next cycle's inputs, in one eval
            load.edge(f_load);
            xs.edge(f_x);
            idle = (f_load || f_x || f_y) ? 0 : idle + 1;
            if (loading && !load.busy()) {  // the x source and y sink start the cycle after
                loading = false;
                xs.start(x_words, n_vec * cols);
                x_started = true;
            }
            if (idle > a.watchdog) {
                std::string what = loading ? "load: " + std::to_string(load.next) + " of " + std::to_string(n_load) +
                                                 " words accepted"
                                           : "y: " + std::to_string(got_total) + " of " +
                                                 std::to_string(rows * n_vec) + " results received (x: " +
                                                 std::to_string(xs.next) + " of " + std::to_string(n_vec * cols) +
                                                 " inputs accepted)";
                fail(3, "stalled: no handshake for " + std::to_string(a.watchdog) + " cycles in job " +
                            std::to_string(job) + "; " + what);
            }
        }
#ifdef SF_EIE
        // The last vector's counters are read in the cycle after its last result, like the others.
        if (gap) {
            dut->SF_PORT(y, ready) = 0;
            dut->SF_PORT(x, valid) = 0;
            dut->eval();
            emit_counters();
            edge();  // the next job's first cycle evaluates with the clock low
        }
#else
        // Let the counters settle: three more edges after the last handshake, sampled each cycle,
        // then the final read (verif/sparse24_tb.py does the same).
        for (int i = 0; i < 4; ++i) {
            dut->SF_PORT(y, ready) = 0;
            dut->SF_PORT(x, valid) = 0;
            dut->eval();
            log_vectors();
            if (i < 3) edge();
        }
        emit(static_cast<int64_t>(log.size() / 2));
        for (int64_t v : log) emit(v);
        emit(static_cast<int64_t>(dut->vectors));
        emit(static_cast<int64_t>(dut->busy));
        emit(last_y - first_x + 1);
#endif
    }
    std::fwrite(obuf.data(), sizeof(int64_t), obuf.size(), out);
    if (std::fclose(out) != 0) fail(2, "cannot write " + a.out);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_wall).count();
#ifdef SF_TRACE
    if (tfp) tfp->close();
#endif
    dut->final();
    finish_status("ok " + std::to_string(cycle - c_start) + " " + std::to_string(secs));
    return 0;
}
