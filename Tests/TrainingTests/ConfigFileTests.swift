import Foundation
import TestSupport
import Training
import XCTest

/// The flag names of `train` and `eval` (current and planned), as `commandLineArguments` gets them.
private let trainKeys: Set<String> = [
    "data", "format", "train-dir", "val-dir", "val-split", "split-seed", "max-pixels", "model", "stem",
    "num-classes", "epochs", "batch-size", "image-size", "lr", "momentum", "weight-decay", "optimizer",
    "lr-schedule", "milestones", "gamma", "step-size", "min-lr", "warmup-epochs", "label-smoothing", "mixup-alpha",
    "cutmix-alpha", "pretrained", "head", "workers", "threads", "seed", "output", "resume", "eval-every",
    "save-best-by", "train-transform", "eval-transform", "hflip",
    // eval
    "weights", "checkpoint", "resize", "json",
]
private let switches: Set<String> = ["nesterov", "freeze-backbone", "strict-data", "exact-decode"]

private func parse(_ text: String) throws -> ConfigFile { try ConfigFile.parse(contents: text, path: "run.yaml") }

private func values(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String: ConfigValue] {
    do {
        return Dictionary(uniqueKeysWithValues: try parse(text).entries.map { ($0.key, $0.value) })
    } catch {
        XCTFail("\(error)", file: file, line: line)
        return [:]
    }
}

private func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
        XCTAssertEqual("\(error)", expected, file: file, line: line)
    }
}

final class ConfigFileTests: XCTestCase {
    func testScalarsAreTypedAsYAMLTypesThem() {
        let v = values(#"""
            model: resnet18
            lr: 0.1
            weight-decay: 5e-4
            seed: -3
            gamma: +.5
            epochs: 30
            nesterov: true
            freeze-backbone: no
            strict-data: On
            exact-decode: FALSE
            threads: ~
            resume: null
            pretrained:
            quoted-bool: "yes"
            quoted-number: '30'
            single: 'it''s # not a comment'
            double: "tab\there\nline \"q\" \\ \x41\u00e9\U0001F600 \/ end"
            output: runs/exp#3   # a comment; the '#' before it is part of the value
            head: mlp:512
            url: http://example.com/a?b=c
            spaced:    text with  inner   spaces    
            version: 1.2.3
            """#)
        XCTAssertEqual(v["model"], .string("resnet18"))
        XCTAssertEqual(v["lr"], .number("0.1"))
        XCTAssertEqual(v["weight-decay"], .number("5e-4"))
        XCTAssertEqual(v["seed"], .number("-3"))
        XCTAssertEqual(v["gamma"], .number("+.5"))
        XCTAssertEqual(v["epochs"], .number("30"))
        XCTAssertEqual(v["nesterov"], .bool(true))
        XCTAssertEqual(v["freeze-backbone"], .bool(false))
        XCTAssertEqual(v["strict-data"], .bool(true))
        XCTAssertEqual(v["exact-decode"], .bool(false))
        XCTAssertEqual(v["threads"], .null)
        XCTAssertEqual(v["resume"], .null)
        XCTAssertEqual(v["pretrained"], .null)
        XCTAssertEqual(v["quoted-bool"], .string("yes"))
        XCTAssertEqual(v["quoted-number"], .string("30"))
        XCTAssertEqual(v["single"], .string("it's # not a comment"))
        XCTAssertEqual(v["double"], .string("tab\there\nline \"q\" \\ A\u{e9}\u{1F600} / end"))
        XCTAssertEqual(v["output"], .string("runs/exp#3"))
        XCTAssertEqual(v["head"], .string("mlp:512"))
        XCTAssertEqual(v["url"], .string("http://example.com/a?b=c"))
        XCTAssertEqual(v["spaced"], .string("text with  inner   spaces"))
        XCTAssertEqual(v["version"], .string("1.2.3"))
    }

    func testFlowAndBlockLists() {
        let v = values("""
            milestones: [30, 60]
            empty: []
            mixed: [a, "b, c", 'd', 1e3, true, ]   # trailing comma, as YAML allows
            block:
              - 30
              # a comment between items
            
              - "60"   # quoted
            flush:
            - x
            - y
            after: 1
            nothing:
            """)
        XCTAssertEqual(v["milestones"], .list([.number("30"), .number("60")]))
        XCTAssertEqual(v["empty"], .list([]))
        XCTAssertEqual(v["mixed"], .list([.string("a"), .string("b, c"), .string("d"), .number("1e3"), .bool(true)]))
        XCTAssertEqual(v["block"], .list([.number("30"), .string("60")]))
        XCTAssertEqual(v["flush"], .list([.string("x"), .string("y")]))
        XCTAssertEqual(v["after"], .number("1"))
        XCTAssertEqual(v["nothing"], .null)
    }

    /// Comments and blank lines before `---`, a byte-order mark, Windows line ends; entries keep
    /// their line numbers and file order.
    func testDocumentMarkerCommentsAndLineEnds() throws {
        let file = try parse("\u{FEFF}# header\r\n\r\n---   # start\r\nlr: 0.1\r\n  # indented comment\r\nepochs: 3 \r\n")
        XCTAssertEqual(file.entries.map(\.key), ["lr", "epochs"])
        XCTAssertEqual(file.entries.map(\.line), [4, 6])
        XCTAssertEqual(file.entries.map(\.value), [.number("0.1"), .number("3")])
        XCTAssertEqual(file.path, "run.yaml")
        XCTAssertTrue(try parse("").entries.isEmpty)
        XCTAssertTrue(try parse("# only a comment\n---\n").entries.isEmpty)
    }

    func testUnsupportedYAMLIsAnErrorNamingFileLineAndConstruct() {
        assertError("optimizer:\n  name: sgd", "run.yaml:2: nested mappings are not supported; write 'key: value' at the top level")
        assertError("lr: a: b", "run.yaml:1: nested mappings are not supported (': ' inside a value; quote the value if it is text)")
        assertError("block:\n  - a: 1", "run.yaml:2: nested mappings are not supported (': ' inside a value; quote the value if it is text)")
        assertError("lr: &rate 0.1", "run.yaml:1: anchors ('&') are not supported")
        assertError("lr: *rate", "run.yaml:1: aliases ('*') are not supported")
        assertError("lr: !!float 0.1", "run.yaml:1: tags ('!') are not supported")
        assertError("data: |\n  /x", "run.yaml:1: block scalars ('|') are not supported; write the value on one line")
        assertError("data: >", "run.yaml:1: block scalars ('>') are not supported; write the value on one line")
        assertError("opt: {name: sgd}", "run.yaml:1: flow mappings ('{…}') are not supported")
        assertError("lr: 0.1\n---\nlr: 0.2", "run.yaml:2: a second document ('---'); a config file holds one")
        assertError("lr: 0.1\n...", "run.yaml:2: document end markers ('...') are not supported")
        assertError("---\n\tlr: 0.1", "run.yaml:2: a tab in the indentation; YAML indents with spaces")
        assertError("list:\n\t- 1", "run.yaml:2: a tab in the indentation; YAML indents with spaces")
        assertError("lr: 0.1\n  0.2", "run.yaml:2: unexpected indentation; multi-line values and nested mappings are not supported")
        assertError("  lr: 0.1", "run.yaml:1: unexpected indentation; multi-line values and nested mappings are not supported")
        assertError("m: [[30], 60]", "run.yaml:1: nested lists are not supported")
        assertError("m:\n  - [30]", "run.yaml:2: nested lists are not supported")
        assertError("m:\n  - - 30", "run.yaml:2: nested lists are not supported")
        assertError("m: [30, 60", "run.yaml:1: a '[' list must close with ']' on the same line")
        assertError("m: [30,\n  60]", "run.yaml:1: a '[' list must close with ']' on the same line")
        assertError("m: [30 60 {x}]", "run.yaml:1: '{' inside a '[' list; nested collections are not supported")
        assertError("m: [30,, 60]", "run.yaml:1: empty item in a '[' list")
        assertError("m: [30] 60", "run.yaml:1: unexpected text after ']': '60'")
        assertError("- 30", "run.yaml:1: a list item without a 'key:' line above it; only lists under a key are supported")
        assertError("m: - 30", "run.yaml:1: a list item must start its own line, under 'key:'")
        assertError("m:\n  - 1\n    - 2", "run.yaml:3: list item indented by 4 space(s), the one above by 2")
        assertError("m:\n  -", "run.yaml:2: empty list item")
        assertError("just text", "run.yaml:1: expected 'key: value'")
        assertError("lr:0.1", "run.yaml:1: expected 'key: value'")
        assertError("batch size: 3", "run.yaml:1: 'batch size' is not a valid key (letters, digits, '-' and '_', starting with a letter)")
        assertError("--lr: 3", "run.yaml:1: '--lr' is not a valid key (letters, digits, '-' and '_', starting with a letter)")
        assertError("\"lr\": 3", "run.yaml:1: quoted keys are not supported")
        assertError("? lr\n: 3", "run.yaml:1: complex keys ('?') are not supported")
        assertError("%YAML 1.2\n---", "run.yaml:1: directives and values starting with '%' are not supported; quote the value")
        assertError("data: @home", "run.yaml:1: '@' cannot start an unquoted value; quote it")
        assertError("data: \"/x", "run.yaml:1: unterminated double-quoted string (a string must end on its line)")
        assertError("data: '/x", "run.yaml:1: unterminated single-quoted string (a string must end on its line)")
        assertError("data: \"a\\qb\"", "run.yaml:1: unknown escape '\\q' in a double-quoted string")
        assertError("data: \"\\u00g1\"", "run.yaml:1: '\\u' needs 4 hex digits naming a Unicode character")
        assertError("data: \"/x\" y", "run.yaml:1: unexpected text after the closing quote: 'y'")
    }

    /// YAML forbids repeating a key; `batch_size` and `batch-size` are the same key.
    func testDuplicateKeysNameBothLines() {
        assertError("lr: 0.1\nepochs: 3\nlr: 0.2", "run.yaml:3: duplicate key 'lr' (already set on line 1)")
        assertError("batch_size: 8\n\nbatch-size: 16", "run.yaml:3: duplicate key 'batch-size' (already set on line 1)")
    }

    func testCommandLineArguments() throws {
        let file = try parse("""
            data: /data/tiny imagenet
            batch_size: 128
            lr: 0.1
            milestones: [30, 60]
            nesterov: true
            freeze-backbone: false
            strict-data: ~
            threads:
            seed: -1
            head: mlp:512
            """)
        XCTAssertEqual(try file.commandLineArguments(validKeys: trainKeys, booleanFlags: switches), [
            "--data", "/data/tiny imagenet", "--batch-size", "128", "--lr", "0.1", "--milestones", "30,60",
            "--nesterov", "--seed=-1", "--head", "mlp:512",
        ])
        // A switch given anything but true or false.
        XCTAssertThrowsError(try parse("epochs: 1\nnesterov: 1").commandLineArguments(validKeys: trainKeys, booleanFlags: switches)) {
            XCTAssertEqual("\($0)", "run.yaml:2: 'nesterov' is a switch; give it true or false, not '1'")
        }
        // A boolean on an option that takes a value is passed as text.
        XCTAssertEqual(try parse("pretrained: yes").commandLineArguments(validKeys: trainKeys, booleanFlags: switches),
                       ["--pretrained", "true"])
    }

    /// Unknown keys are errors; a close valid key is suggested (typos, other separators,
    /// initials), a distant one is not.
    func testUnknownKeysSuggestTheClosestValidKey() throws {
        func message(_ key: String) throws -> String {
            let file = try parse("epochs: 3\n\(key): 1")
            do {
                _ = try file.commandLineArguments(validKeys: trainKeys, booleanFlags: switches)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(try message("lr-shedule"), "run.yaml:2: unknown key 'lr-shedule'; did you mean 'lr-schedule'?")
        XCTAssertEqual(try message("lr_shedule"), "run.yaml:2: unknown key 'lr_shedule'; did you mean 'lr-schedule'?")
        XCTAssertEqual(try message("batchsize"), "run.yaml:2: unknown key 'batchsize'; did you mean 'batch-size'?")
        XCTAssertEqual(try message("Batch_Size"), "run.yaml:2: unknown key 'Batch_Size'; did you mean 'batch-size'?")
        XCTAssertEqual(try message("learning_rate"), "run.yaml:2: unknown key 'learning_rate'; did you mean 'lr'?")
        XCTAssertEqual(try message("wd"), "run.yaml:2: unknown key 'wd'; did you mean 'weight-decay'?")
        XCTAssertEqual(try message("momentun"), "run.yaml:2: unknown key 'momentun'; did you mean 'momentum'?")
        XCTAssertEqual(try message("weight-decya"), "run.yaml:2: unknown key 'weight-decya'; did you mean 'weight-decay'?")
        XCTAssertEqual(try message("nesterv"), "run.yaml:2: unknown key 'nesterv'; did you mean 'nesterov'?")
        XCTAssertEqual(try message("epoch"), "run.yaml:2: unknown key 'epoch'; did you mean 'epochs'?")
        XCTAssertEqual(try message("mixup"), "run.yaml:2: unknown key 'mixup'; did you mean 'mixup-alpha'?")
        XCTAssertEqual(try message("schedule"), "run.yaml:2: unknown key 'schedule'; did you mean 'lr-schedule'?")
        XCTAssertEqual(try message("size"), "run.yaml:2: unknown key 'size'")   // batch-, image- or step-size
        XCTAssertEqual(try message("xy"), "run.yaml:2: unknown key 'xy'")
        XCTAssertEqual(try message("optimiser-name"), "run.yaml:2: unknown key 'optimiser-name'")
    }

    func testLoadReadsTheFileAndNamesAMissingOne() throws {
        let directory = try makeTemporaryDirectory("sdt-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("run.yaml").path
        try Data("lr: 0.05\n".utf8).write(to: URL(fileURLWithPath: path))
        let file = try ConfigFile.load(path: path)
        XCTAssertEqual(file.path, path)
        XCTAssertEqual(file.entries.first?.value, .number("0.05"))
        let missing = directory.appendingPathComponent("missing.yaml").path
        XCTAssertThrowsError(try ConfigFile.load(path: missing)) {
            XCTAssertTrue("\($0)".hasPrefix("\(missing): cannot read the config file"), "\($0)")
        }
        try Data([0x6C, 0x72, 0x3A, 0x20, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ConfigFile.load(path: path)) {
            XCTAssertEqual("\($0)", "\(path): the config file is not UTF-8 text")
        }
    }

    /// Every example in configs/ parses and uses only flag names `train` and `eval` know (or are
    /// about to).
    func testExampleConfigsParse() throws {
        let directory = packageRoot.appendingPathComponent("configs")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(names, ["efficientnet-b3-tiny-imagenet.yaml", "inception-resnet-v2-mini-webvision.yaml",
                               "resnet18-tiny-imagenet.yaml", "resnet50-finetune-frozen.yaml", "resnet50-imagenet-eval.yaml"])
        for name in names {
            let file = try ConfigFile.load(path: directory.appendingPathComponent(name).path)
            XCTAssertFalse(file.entries.isEmpty, name)
            let arguments = try file.commandLineArguments(validKeys: trainKeys, booleanFlags: switches)
            XCTAssertTrue(arguments.contains("--model"), name)
        }
        let webvision = try ConfigFile.load(path: directory.appendingPathComponent("inception-resnet-v2-mini-webvision.yaml").path)
        XCTAssertEqual(webvision.entries.first { $0.key == "milestones" }?.value, .list([.number("30"), .number("60")]))
    }
}
