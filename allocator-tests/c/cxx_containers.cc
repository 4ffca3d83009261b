// Standard containers and smart pointers on top of the preloaded operators:
// their results must be right, and capacity that a container reserved but
// never wrote reads as the pattern (the bug class this allocator exists for:
// reading past size() into reserved storage).
#include <algorithm>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common.h"

static void check_vector_capacity() {
    const size_t reserves[] = {10, 100, 5000, 40000, MIB, 5 * MIB};
    for (size_t r = 0; r < sizeof reserves / sizeof reserves[0]; r++) {
        for (int round = 0; round < 2; round++) {
            std::vector<unsigned char> v;
            v.reserve(reserves[r]);
            REQUIRE(v.capacity() >= reserves[r], "reserve(%zu) gave capacity %zu", reserves[r], v.capacity());
            EXPECT_FRESH(v.data(), v.capacity(), "vector<unsigned char>::reserve(%zu) round %d", reserves[r], round);
            v.push_back(1);
            v.push_back(2);
            CHECK(v[0] == 1 && v[1] == 2, "vector contents");
            // The storage past size() is still what nobody wrote.
            EXPECT_FRESH_TAIL(v.data(), v.size(), "vector<unsigned char> of %zu reserved, past size()", reserves[r]);
            std::fill(v.data(), v.data() + v.size(), 0x44);
            v.resize(v.capacity() / 2, 0x55);
        }
    }
    // Growth by push_back: after each reallocation the new capacity past
    // size() reads as the pattern, and the elements moved over are intact.
    std::vector<unsigned char> v;
    size_t reallocations = 0;
    for (size_t i = 0; i < 3 * MIB; i++) {
        const unsigned char *before = v.data();
        v.push_back((unsigned char)(i * 7));
        if (v.data() != before) {
            reallocations++;
            EXPECT_FRESH_TAIL(v.data(), v.size(), "vector grown to capacity %zu", v.capacity());
        }
    }
    for (size_t i = 0; i < v.size(); i += 4097)
        CHECK(v[i] == (unsigned char)(i * 7), "vector element %zu is %d", i, v[i]);
    CHECK(reallocations >= 15, "only %zu reallocations", reallocations);
}

static void check_string_capacity() {
    for (size_t n : {100, 3000, 50000, 2000000}) {
        std::string s = "head";
        s.reserve(n);
        // libstdc++ allocates capacity() + 1 and writes size() + 1 bytes (the
        // terminator); the rest is unwritten.
        EXPECT_FRESH_TAIL(s.data(), s.size() + 1, "std::string::reserve(%zu)", n);
        s.append(n / 2, 'x');
        CHECK(s.size() == 4 + n / 2 && s[0] == 'h' && s.back() == 'x', "string append");
    }
}

static void check_containers() {
    std::vector<int> ints;
    for (int i = 0; i < 1000000; i++) ints.push_back(i);
    long long sum = std::accumulate(ints.begin(), ints.end(), 0LL);
    CHECK(sum == 499999500000LL, "vector<int> sum is %lld", sum);

    std::map<int, std::string> ordered;
    for (int i = 0; i < 50000; i++) ordered[(i * 7919) % 50000] = std::to_string(i);
    CHECK(ordered.size() == 50000, "map size %zu", ordered.size());
    int expect_key = 0;
    for (const auto &kv : ordered) {
        if (kv.first != expect_key) {
            FAIL("map key %d where %d was expected", kv.first, expect_key);
            break;
        }
        expect_key++;
    }
    for (int i = 0; i < 50000; i += 1000) ordered.erase(i);
    CHECK(ordered.size() == 49950, "map size after erase %zu", ordered.size());

    std::unordered_map<std::string, int> hashed;
    for (int i = 0; i < 50000; i++) hashed["key-" + std::to_string(i)] = i;
    for (int i = 0; i < 50000; i += 97) {
        auto it = hashed.find("key-" + std::to_string(i));
        CHECK(it != hashed.end() && it->second == i, "unordered_map lookup of key-%d", i);
    }

    std::vector<std::string> words;
    for (int i = 0; i < 20000; i++)
        words.push_back(std::string((size_t)(i % 50), (char)('a' + i % 26)) + std::to_string(i));
    std::sort(words.begin(), words.end());
    CHECK(std::is_sorted(words.begin(), words.end()), "sorted strings");

    std::list<std::vector<int>> lists;
    for (int i = 0; i < 2000; i++) lists.emplace_back((size_t)(i % 100 + 1), i);
    size_t total = 0;
    for (const auto &l : lists) total += l.size();
    CHECK(total == 101000, "list of vectors holds %zu ints", total);

    std::vector<std::shared_ptr<std::string>> shared;
    std::vector<std::weak_ptr<std::string>> weak;
    for (int i = 0; i < 10000; i++) {
        shared.push_back(std::make_shared<std::string>(std::to_string(i)));
        weak.push_back(shared.back());
    }
    std::shared_ptr<std::string> keep = shared[1234];
    shared.clear();
    int alive = 0;
    for (const auto &w : weak) alive += !w.expired();
    CHECK(alive == 1 && *keep == "1234", "%d weak pointers alive, kept \"%s\"", alive, keep->c_str());

    std::unique_ptr<int[]> owned(new int[1000]());
    CHECK(owned[999] == 0, "value-initialized array");

    // Exceptions: libstdc++ allocates the exception object with malloc.
    int caught = 0;
    for (int i = 0; i < 1000; i++) {
        try {
            throw std::runtime_error("error number " + std::to_string(i));
        } catch (const std::runtime_error &e) {
            caught += std::string(e.what()) == "error number " + std::to_string(i);
        }
    }
    CHECK(caught == 1000, "%d of 1000 exceptions caught intact", caught);

    // Containers built on several threads and handed back to this one.
    std::vector<std::map<int, std::string>> results(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++)
        threads.emplace_back([t, &results] {
            for (int i = 0; i < 20000; i++) results[(size_t)t][i] = std::string(30, (char)('a' + t));
        });
    for (auto &t : threads) t.join();
    for (int t = 0; t < 4; t++)
        CHECK(results[(size_t)t].size() == 20000 && results[(size_t)t][19999][29] == 'a' + t, "map from thread %d", t);
    results.clear();
}

int main() {
    setup_expectations();
    check_vector_capacity();
    check_string_capacity();
    check_containers();
    return finish("cxx_containers");
}
