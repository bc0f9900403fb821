// eslint for the browser JavaScript in assets/ (flat config). Run from the repository root:
//   tools/js/node_modules/.bin/eslint -c tools/js/eslint.config.js assets tools/js      (or `npm run lint` in tools/js)
// tests/test_js.py runs it in the test suite.
"use strict";

const js = require("@eslint/js");
const globals = require("globals");

// Selectors for writes to `<name>.<x>` or `fp.<name>.<x>` (also one level deeper), each with `message`.
function ownerOnly(name, message) {
  const stateObj = (path) => [`[${path}.name='${name}']`, `[${path}.property.name='${name}']`];
  const targets = (node) => [...stateObj(`${node}.object`), ...stateObj(`${node}.object.object`)];
  const mutators = "/^(push|pop|shift|unshift|splice|sort|reverse|fill|set|add|delete|clear)$/";
  return [
    ...targets("left").map((t) => `AssignmentExpression${t}`),
    ...targets("argument").map((t) => `UpdateExpression${t}`),
    ...targets("argument").map((t) => `UnaryExpression[operator='delete']${t}`),
    ...targets("callee.object").map((t) => `CallExpression[callee.property.name=${mutators}]${t}`),
  ].map((selector) => ({selector, message}));
}

const STORE_ONLY = ownerOnly("state", "fp.state is written only in assets/10_store.js: call an fp.store function");
const INTEL_ONLY = ownerOnly("intel", "fp.intel is written only in assets/25_intel.js, from the server's messages");

module.exports = [
  {
    // third-party bundles, served as they come
    ignores: ["assets/00_socket.io.min.js", "assets/01_plotly-basic.min.js"],
  },
  {
    files: ["assets/**/*.js"],
    ...js.configs.recommended,
  },
  {
    files: ["assets/**/*.js"],
    languageOptions: {
      // classic scripts that Dash loads in file-name order; they share state through window.floorpulse
      sourceType: "script",
      ecmaVersion: "latest",
      globals: {
        ...globals.browser,
        // set by the scripts Dash loads before ours; the asset files reach them through window.* today,
        // these keep a bare reference from being reported as undefined. `fp` is deliberately NOT a global:
        // each file binds its own `var fp = window.floorpulse`, and a file that forgets to must fail here.
        floorpulse: "readonly",
        io: "readonly", // socket.io client (assets/00_socket.io.min.js)
        Plotly: "readonly", // plotly.js (assets/01_plotly-basic.min.js)
        dash_clientside: "readonly",
        dash_component_api: "readonly",
      },
    },
    rules: {
      // a catch clause needs its binding in ES5-style code, so an unused one is not a finding
      "no-unused-vars": ["error", {args: "after-used", caughtErrors: "none"}],
      eqeqeq: ["error", "always"],
      // every file is an IIFE in strict mode: nothing leaks into the page's global scope by accident
      strict: ["error", "function"],
      "no-implicit-globals": "error",
    },
  },
  {
    // The store (assets/10_store.js) is the only writer of fp.state: elsewhere `state` / `fp.state` is read, and
    // changed through fp.store.* (issue 13). Assignments, ++/--, delete and the mutating methods of its members.
    // Likewise the intelligence state, fp.intel (assets/25_intel.js). One rule holds both lists of selectors, so each
    // owner's file has a block of its own with the other's list.
    files: ["assets/**/*.js"],
    ignores: ["assets/10_store.js", "assets/25_intel.js"],
    rules: {
      "no-restricted-syntax": ["error", ...STORE_ONLY, ...INTEL_ONLY],
    },
  },
  {
    files: ["assets/10_store.js"],
    rules: {"no-restricted-syntax": ["error", ...INTEL_ONLY]},
  },
  {
    files: ["assets/25_intel.js"],
    rules: {"no-restricted-syntax": ["error", ...STORE_ONLY]},
  },
  {
    // this folder: the config and the unit tests (Node, CommonJS)
    files: ["tools/js/**/*.js"],
    ...js.configs.recommended,
  },
  {
    files: ["tools/js/**/*.js"],
    languageOptions: {sourceType: "commonjs", ecmaVersion: "latest", globals: {...globals.node}},
    rules: {eqeqeq: ["error", "always"]},
  },
];
