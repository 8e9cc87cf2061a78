%% @doc Fixture for mongoose_host_SUITE: a dependency module supporting
%% dynamic domains, logging its start and stop; dependencies from `deps'.
-module(host_fixture_dep_mod).

-behaviour(gen_mod).

-export([start/2, stop/1, supported_features/0, deps/2]).

-define(HOST_FIXTURE_LOGGED, true).
-define(HOST_FIXTURE_DYNAMIC, true).
-include("host_fixture.hrl").
