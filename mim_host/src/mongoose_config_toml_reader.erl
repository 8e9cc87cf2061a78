%% @doc Test host: reads a TOML file into Erlang terms (ours).
%%
%% MongooseIM reads TOML with `tomerl' (a hex package, unreachable here), so the
%% test host lets Python's standard `tomllib' do the parsing and hands the
%% document over as JSON, decoded with `jiffy'. The result has tomerl's shape:
%% tables are maps with binary keys, strings are UTF-8 binaries, arrays are
%% lists. TOML values JSON cannot carry come back tagged:
%% `{toml_datetime, Iso8601}' for dates and times, and the atoms `infinity',
%% `'-infinity'' and `nan' for non-finite floats. No config option accepts them,
%% so they fail type conversion with the option's path.
-module(mongoose_config_toml_reader).

-export([read_file/1]).

%% Parsing a config takes milliseconds; this bounds a stuck interpreter.
-define(TIMEOUT_MS, 60000).

%% The script is kept here (not in a .py file) so that it is found wherever the
%% test build puts the compiled module. It always exits 0 with one JSON object:
%% {"ok": Document} or {"error": Text}.
-define(SCRIPT, "
import datetime, json, math, sys, tomllib

def tagged(kind, value):
    return {'__toml_type__': kind, '__toml_value__': value}

def convert(v):
    if isinstance(v, dict):
        return {k: convert(x) for k, x in v.items()}
    if isinstance(v, list):
        return [convert(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return tagged('float', str(v))
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return tagged('datetime', v.isoformat())
    return v

try:
    with open(sys.argv[1], 'rb') as f:
        out = {'ok': convert(tomllib.load(f))}
except tomllib.TOMLDecodeError as e:
    out = {'error': 'TOML syntax error: ' + str(e)}
except (OSError, UnicodeDecodeError) as e:
    out = {'error': 'Cannot read the file: ' + str(e)}
sys.stdout.write(json.dumps(out))
").

%% @doc The TOML document of the file, or a text saying why it cannot be read.
-spec read_file(file:filename_all()) -> {ok, map()} | {error, binary()}.
read_file(FileName) ->
    case os:find_executable("python3") of
        false ->
            {error, <<"python3 (with tomllib, Python >= 3.11) is not on the PATH">>};
        Python ->
            run(Python, unicode:characters_to_list(FileName))
    end.

run(Python, FileName) ->
    Port = open_port({spawn_executable, Python},
                     [{args, ["-I", "-c", ?SCRIPT, FileName]},
                      binary, exit_status, use_stdio, stderr_to_stdout, hide]),
    Deadline = erlang:monotonic_time(millisecond) + ?TIMEOUT_MS,
    case collect(Port, [], Deadline) of
        {0, Output} -> decode(Output);
        {Status, Output} ->
            {error, iolist_to_binary(io_lib:format("python3 exited with status ~p: ~ts",
                                                   [Status, Output]))};
        timeout ->
            {error, <<"python3 did not answer in time">>}
    end.

collect(Port, Acc, Deadline) ->
    Timeout = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, Data}} -> collect(Port, [Acc, Data], Deadline);
        {Port, {exit_status, Status}} -> {Status, iolist_to_binary(Acc)}
    after Timeout ->
            catch port_close(Port),
            timeout
    end.

decode(Output) ->
    try jiffy:decode(Output, [return_maps]) of
        #{<<"ok">> := Doc} -> {ok, untag(Doc)};
        #{<<"error">> := Text} -> {error, Text}
    catch
        _:_ -> {error, <<"unexpected output from python3: ", Output/binary>>}
    end.

untag(#{<<"__toml_type__">> := <<"datetime">>, <<"__toml_value__">> := V} = M)
  when map_size(M) =:= 2 ->
    {toml_datetime, V};
untag(#{<<"__toml_type__">> := <<"float">>, <<"__toml_value__">> := V} = M)
  when map_size(M) =:= 2 ->
    non_finite(V);
untag(M) when is_map(M) ->
    maps:map(fun(_K, V) -> untag(V) end, M);
untag(L) when is_list(L) ->
    [untag(V) || V <- L];
untag(V) ->
    V.

non_finite(<<"inf">>) -> infinity;
non_finite(<<"-inf">>) -> '-infinity';
non_finite(<<"nan">>) -> nan.
