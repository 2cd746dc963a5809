"""A collection of Postman's script-editor snippets, as the editor inserts them, and of chai and
chai-postman assertions, each in its own pm.test, passing and failing: run by our engine and by
Newman, every test must come out the same. The mocks it calls are MOCKS."""

MOCKS = [
    {"id": "snip-json", "http": {"route": "/snip/json", "httpMethod": "GET"},
     "response": {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                  "payload": {"value": 100, "args": {"test": 1}, "items": [1, 2, 3],
                              "user": {"name": "Ann"}}}},
    {"id": "snip-created", "http": {"route": "/snip/created", "httpMethod": "POST"},
     "response": {"statusCode": 201, "headers": {"Content-Type": "text/plain"},
                  "payload": "response_body_string"}},
    {"id": "snip-xml", "http": {"route": "/snip/xml", "httpMethod": "GET"},
     "response": {"statusCode": 200, "headers": {"Content-Type": "application/xml"},
                  "payload": "<root><a x=\"1\">t</a><b>1</b><b>2</b></root>"}},
]

# The editor's snippets (test side), verbatim but for pm.sendRequest's URL (no internet here).
EDITOR_TESTS = """
pm.test("Status code is 200", function () {
    pm.response.to.have.status(200);
});
pm.test("Body matches string", function () {
    pm.expect(pm.response.text()).to.include("string_you_want_to_search");
});
pm.test("Your test name", function () {
    var jsonData = pm.response.json();
    pm.expect(jsonData.value).to.eql(100);
});
pm.test("Body is correct", function () {
    pm.response.to.have.body("response_body_string");
});
pm.test("Content-Type is present", function () {
    pm.response.to.have.header("Content-Type");
});
pm.test("Successful POST request", function () {
    pm.expect(pm.response.code).to.be.oneOf([201, 202]);
});
pm.test("Status code name has string", function () {
    pm.response.to.have.status("Created");
});
var schema = {
    "items": {
        "type": "boolean"
    }
};
var data1 = [true, false];
var data2 = [true, 123];
pm.test('Schema is valid', function() {
    pm.expect(tv4.validate(data1, schema)).to.be.true;
    pm.expect(tv4.validate(data2, schema)).to.be.true;
});
pm.sendRequest(pm.environment.get("baseUrl") + "/snip/json", function (err, response) {
    console.log(response.json());
    pm.test("sendRequest callback", function () {
        pm.expect(err).to.equal(null);
        pm.expect(response.json().value).to.eql(100);
    });
});
pm.test("variables set by the pre-request snippets", function () {
    pm.expect(pm.environment.get("variable_key")).to.equal("variable_value");
    pm.expect(pm.globals.get("variable_key")).to.equal("variable_value");
    pm.expect(pm.collectionVariables.get("variable_key")).to.equal("variable_value");
    pm.expect(pm.variables.get("variable_key")).to.equal("variable_value");
});
pm.environment.unset("variable_key");
pm.globals.unset("variable_key");
pm.collectionVariables.unset("variable_key");
pm.test("variables unset by the snippets", function () {
    pm.expect(pm.environment.get("variable_key")).to.be.undefined;
    pm.expect(pm.globals.get("variable_key")).to.be.undefined;
    pm.expect(pm.collectionVariables.get("variable_key")).to.be.undefined;
});
"""

EDITOR_PRE = """
pm.environment.get("variable_key");
pm.globals.get("variable_key");
pm.variables.get("variable_key");
pm.collectionVariables.get("variable_key");
pm.environment.set("variable_key", "variable_value");
pm.globals.set("variable_key", "variable_value");
pm.collectionVariables.set("variable_key", "variable_value");
"""

XML_TESTS = """
var jsonObject = xml2Json(responseBody);
pm.test("xml2Json shape", function () {
    pm.expect(jsonObject.root.b).to.eql(["1", "2"]);
    pm.expect(jsonObject.root.a._).to.equal("t");
    pm.expect(jsonObject.root.a.$.x).to.equal("1");
});
"""

# The older snippets (Postman before pm.*), still found in collections. (The oldest also used
# responseJSON, which Newman's sandbox does not define; neither do we.)
LEGACY_TESTS = """
tests["Body matches string"] = responseBody.has("string_you_want_to_search");
tests["Body has value"] = responseBody.has("value");
tests["Body is correct"] = responseBody === "response_body_string";
var jsonData = JSON.parse(responseBody);
tests["Your test name"] = jsonData.value === 100;
tests["Content-Type is present"] = postman.getResponseHeader("Content-Type");
tests["Status code is 200"] = responseCode.code === 200;
tests["Successful POST request"] = responseCode.code === 201 || responseCode.code === 202;
tests["Status code name has string"] = responseCode.name.has("Created");
postman.setEnvironmentVariable("legacy_key", "legacy_value");
postman.setGlobalVariable("legacy_key", "legacy_value");
tests["legacy variables"] = postman.getEnvironmentVariable("legacy_key") === "legacy_value" &&
    postman.getGlobalVariable("legacy_key") === "legacy_value";
postman.clearEnvironmentVariable("legacy_key");
postman.clearGlobalVariable("legacy_key");
tests["legacy variables cleared"] = !pm.environment.has("legacy_key") && !pm.globals.has("legacy_key");
"""

# chai and chai-postman, against the JSON response: (name, statement).
CHAI = [
    ("equal", "pm.expect(1).to.equal(1)"),
    ("equal fails", "pm.expect(1).to.equal(2)"),
    ("equal is strict", "pm.expect('1').to.equal(1)"),
    ("eql", "pm.expect({a: [1, {b: 2}]}).to.eql({a: [1, {b: 2}]})"),
    ("eql fails", "pm.expect({a: 1}).to.eql({a: 1, b: 2})"),
    ("deep equal", "pm.expect([1, 2]).to.deep.equal([1, 2])"),
    ("not equal", "pm.expect(1).to.not.equal(2)"),
    ("include string", "pm.expect('foobar').to.include('oba')"),
    ("include array", "pm.expect([1, 2, 3]).to.include(2)"),
    ("include object in array is strict", "pm.expect([{a: 1}]).to.include({a: 1})"),
    ("deep include", "pm.expect([{a: 1}]).to.deep.include({a: 1})"),
    ("include subset", "pm.expect({a: 1, b: 2}).to.include({a: 1})"),
    ("contain fails", "pm.expect('abc').to.contain('d')"),
    ("include number fails", "pm.expect(5).to.include(5)"),
    ("property", "pm.expect({a: 1}).to.have.property('a')"),
    ("property value", "pm.expect({a: 1}).to.have.property('a', 1)"),
    ("property value fails", "pm.expect({a: 1}).to.have.property('a', 2)"),
    ("nested property", "pm.expect({a: {b: [1, 2]}}).to.have.nested.property('a.b[1]', 2)"),
    ("own property", "pm.expect({a: 1}).to.have.own.property('a')"),
    ("not property", "pm.expect({}).to.not.have.property('a')"),
    ("a string", "pm.expect('x').to.be.a('string')"),
    ("an array", "pm.expect([]).to.be.an('array')"),
    ("an object", "pm.expect({}).to.be.an('object')"),
    ("a number fails", "pm.expect('1').to.be.a('number')"),
    ("null is not an object", "pm.expect(null).to.be.an('object')"),
    ("a null", "pm.expect(null).to.be.a('null')"),
    ("above", "pm.expect(5).to.be.above(4)"),
    ("above fails", "pm.expect(5).to.be.above(5)"),
    ("below", "pm.expect(5).to.be.below(6)"),
    ("at least", "pm.expect(5).to.be.at.least(5)"),
    ("at most fails", "pm.expect(5).to.be.at.most(4)"),
    ("gt and lt", "pm.expect(5).to.be.gt(1).and.lt(10)"),
    ("within", "pm.expect(5).to.be.within(1, 5)"),
    ("ok", "pm.expect('x').to.be.ok"),
    ("ok fails", "pm.expect(0).to.be.ok"),
    ("true", "pm.expect(true).to.be.true"),
    ("true is strict", "pm.expect(1).to.be.true"),
    ("false", "pm.expect(false).to.be.false"),
    ("null", "pm.expect(null).to.be.null"),
    ("undefined", "pm.expect(undefined).to.be.undefined"),
    ("exist", "pm.expect(0).to.exist"),
    ("exist fails", "pm.expect(null).to.exist"),
    ("empty array", "pm.expect([]).to.be.empty"),
    ("empty string fails", "pm.expect('a').to.be.empty"),
    ("empty object", "pm.expect({}).to.be.empty"),
    ("lengthOf", "pm.expect([1, 2]).to.have.lengthOf(2)"),
    ("length", "pm.expect('abc').to.have.length(3)"),
    ("length above", "pm.expect([1, 2, 3]).to.have.length.above(2)"),
    ("lengthOf above fails", "pm.expect([1, 2, 3]).to.have.lengthOf.above(3)"),
    ("match", "pm.expect('abc').to.match(/^a/)"),
    ("match fails", "pm.expect('abc').to.match(/^b/)"),
    ("all keys", "pm.expect({a: 1, b: 2}).to.have.all.keys('a', 'b')"),
    ("any keys", "pm.expect({a: 1, b: 2}).to.have.any.keys('a', 'z')"),
    ("keys are exact", "pm.expect({a: 1, b: 2}).to.have.keys('a')"),
    ("include keys", "pm.expect({a: 1, b: 2}).to.include.keys('a')"),
    ("members", "pm.expect([1, 2, 3]).to.have.members([3, 2, 1])"),
    ("include members", "pm.expect([1, 2, 3]).to.include.members([1, 2])"),
    ("members fails", "pm.expect([1, 2]).to.have.members([1])"),
    ("deep members", "pm.expect([{a: 1}]).to.have.deep.members([{a: 1}])"),
    ("oneOf", "pm.expect(2).to.be.oneOf([1, 2])"),
    ("oneOf fails", "pm.expect(3).to.be.oneOf([1, 2])"),
    ("closeTo", "pm.expect(1.5).to.be.closeTo(1, 0.5)"),
    ("satisfy", "pm.expect(3).to.satisfy(function (n) { return n % 3 === 0; })"),
    ("string", "pm.expect('hello').to.have.string('ell')"),
    ("instanceOf", "pm.expect([]).to.be.instanceOf(Array)"),
    ("throw", "pm.expect(function () { throw new Error('boom'); }).to.throw('boom')"),
    ("not throw fails", "pm.expect(function () { throw new TypeError('x'); }).to.not.throw()"),
    ("NaN", "pm.expect(NaN).to.be.NaN"),
    ("that chain", "pm.expect({a: [1]}).to.have.property('a').that.is.an('array').that.includes(1)"),
    ("and chain fails", "pm.expect(5).to.be.a('number').and.be.above(10)"),
    ("not include", "pm.expect([1]).to.not.include(2)"),
    ("expect.fail", "pm.expect.fail('forced')"),
    ("custom message fails", "pm.expect(1, 'my message').to.equal(2)"),
    ("jsonBody path value", "pm.response.to.have.jsonBody('value', 100)"),
    ("jsonBody missing fails", "pm.response.to.have.jsonBody('missing')"),
    ("response ok", "pm.response.to.be.ok"),
    ("response success", "pm.response.to.be.success"),
    ("response not error", "pm.response.to.not.be.error"),
    ("response json", "pm.response.to.be.json"),
    ("response header value", "pm.response.to.have.header('Content-Type', 'application/json')"),
    ("response status fails", "pm.response.to.have.status(201)"),
    ("response body fails", "pm.response.to.have.body('nope')"),
    ("response withBody", "pm.response.to.be.withBody"),
    ("jsonSchema", "pm.response.to.have.jsonSchema({type: 'object', required: ['value']})"),
    ("jsonSchema fails", "pm.response.to.have.jsonSchema({type: 'object', required: ['nope']})"),
    ("clientError fails", "pm.response.to.be.clientError"),
    ("headers get", "pm.expect(pm.response.headers.get('content-type')).to.include('json')"),
    ("headers has", "pm.expect(pm.response.headers.has('X-Nope')).to.be.false"),
    ("json deep", "pm.expect(pm.response.json().args).to.deep.equal({test: 1})"),
    ("json parse of text", "pm.expect(JSON.parse(pm.response.text()).items).to.eql([1, 2, 3])"),
    ("request method", "pm.expect(pm.request.method).to.equal('GET')"),
    ("request url", "pm.expect(pm.request.url.toString()).to.include('/snip/json')"),
    ("info", "pm.expect(pm.info.requestName).to.equal('chai')"),
]


def _item(name, method, path, tests, pre=None):
    events = [{"listen": "test", "script": {"exec": tests.strip("\n").split("\n")}}]
    if pre:
        events.insert(0, {"listen": "prerequest", "script": {"exec": pre.strip("\n").split("\n")}})
    return {"name": name, "event": events,
            "request": {"method": method, "url": "{{baseUrl}}" + path}}


def collection():
    chai = "\n".join("pm.test(%r, function () { %s; });" % (n, s) for n, s in CHAI)
    return {
        "info": {"_postman_id": "e2e-snippets", "name": "Snippets",
                 "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": [
            _item("editor snippets json", "GET", "/snip/json", EDITOR_TESTS, EDITOR_PRE),
            _item("editor snippets created", "POST", "/snip/created", EDITOR_TESTS, EDITOR_PRE),
            _item("editor snippets xml", "GET", "/snip/xml", XML_TESTS),
            _item("legacy snippets json", "GET", "/snip/json", LEGACY_TESTS),
            _item("legacy snippets created", "POST", "/snip/created", LEGACY_TESTS),
            _item("chai", "GET", "/snip/json", chai),
        ],
    }


# A data-driven collection and its CSV (quoted fields, a comma inside quotes, an empty cell):
# one pass per row, {{row}} in the URL, pm.iterationData and pm.info.iteration in the tests.
DATA_CSV = 'row,expected,note\na,100,plain\nb,99,"quoted, with comma"\n"c ""q""",100,\n'


def data_collection():
    tests = """
var row = pm.iterationData.get("row");
pm.test("row " + row + ": value as expected", function () {
    pm.expect(String(pm.response.json().value)).to.equal(pm.iterationData.get("expected"));
});
pm.test("row " + row + ": iteration " + pm.info.iteration + " of " + pm.info.iterationCount,
        function () {
    pm.expect(pm.info.iterationCount).to.equal(3);
    pm.expect(pm.request.url.toString()).to.include("/snip/json");
});
pm.test("row " + row + ": note", function () {
    pm.expect(pm.iterationData.get("note")).to.be.a("string").and.not.be.empty;
});
"""
    return {
        "info": {"_postman_id": "e2e-data", "name": "Data",
                 "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": [_item("data row", "GET", "/snip/json?row={{row}}", tests)],
    }
