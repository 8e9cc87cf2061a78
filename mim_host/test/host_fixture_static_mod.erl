%% @doc Fixture for mongoose_host_SUITE: a module without dynamic domains
%% support (no supported_features/0), logging its start and stop.
-module(host_fixture_static_mod).

-behaviour(gen_mod).

-export([start/2, stop/1]).

-define(HOST_FIXTURE_LOGGED, true).
-include("host_fixture.hrl").
