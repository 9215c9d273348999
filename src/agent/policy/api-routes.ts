/**
 * The Docker Engine API surface (v1.41 and later) as the engine's router sees it, each route
 * tagged with its policy section and the engine's operation id. `{name}` matches one or more
 * segments (the engine's `{name:.*}`: image, container, volume, network, plugin names may
 * contain slashes); `{id}` matches exactly one (swarm objects). Matching is exact-case and
 * exact-method, like the engine's: anything not listed is unknown and refused.
 */
import type { SectionName } from './policy-file.ts';

export interface ApiRoute {
  readonly methods: readonly string[];
  readonly pattern: RegExp;
  readonly section: SectionName;
  readonly op: string;
}

function route(methods: string, template: string, section: SectionName, op: string): ApiRoute {
  const source = template
    .split('/')
    .map((seg) => (seg === '{name}' ? '.+' : seg === '{id}' ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return { methods: methods.split(' '), pattern: new RegExp(`^${source}$`), section, op };
}

/** Specific routes come before the `{name}` catch-alls they overlap with. */
export const API_ROUTES: readonly ApiRoute[] = [
  route('GET HEAD', '/_ping', 'ping', 'SystemPing'),
  route('GET', '/version', 'version', 'SystemVersion'),
  route('GET', '/info', 'info', 'SystemInfo'),
  route('GET', '/events', 'events', 'SystemEvents'),
  route('GET', '/system/df', 'system', 'SystemDataUsage'),
  route('POST', '/auth', 'auth', 'SystemAuth'),

  route('GET', '/containers/json', 'containers', 'ContainerList'),
  route('POST', '/containers/create', 'containers', 'ContainerCreate'),
  route('POST', '/containers/prune', 'containers', 'ContainerPrune'),
  route('GET', '/containers/{name}/attach/ws', 'containers', 'ContainerAttachWebsocket'),
  route('GET', '/containers/{name}/json', 'containers', 'ContainerInspect'),
  route('GET', '/containers/{name}/top', 'containers', 'ContainerTop'),
  route('GET', '/containers/{name}/logs', 'containers', 'ContainerLogs'),
  route('GET', '/containers/{name}/stats', 'containers', 'ContainerStats'),
  route('GET', '/containers/{name}/changes', 'containers', 'ContainerChanges'),
  route('POST', '/containers/{name}/start', 'containers', 'ContainerStart'),
  route('POST', '/containers/{name}/stop', 'containers', 'ContainerStop'),
  route('POST', '/containers/{name}/restart', 'containers', 'ContainerRestart'),
  route('POST', '/containers/{name}/kill', 'containers', 'ContainerKill'),
  route('POST', '/containers/{name}/pause', 'containers', 'ContainerPause'),
  route('POST', '/containers/{name}/unpause', 'containers', 'ContainerUnpause'),
  route('POST', '/containers/{name}/wait', 'containers', 'ContainerWait'),
  route('POST', '/containers/{name}/resize', 'containers', 'ContainerResize'),
  route('POST', '/containers/{name}/attach', 'containers', 'ContainerAttach'),
  route('POST', '/containers/{name}/update', 'containers', 'ContainerUpdate'),
  route('POST', '/containers/{name}/rename', 'containers', 'ContainerRename'),
  route('DELETE', '/containers/{name}', 'containers', 'ContainerDelete'),
  route('POST', '/commit', 'containers', 'ImageCommit'),

  route('HEAD', '/containers/{name}/archive', 'archive', 'ContainerArchiveInfo'),
  route('GET', '/containers/{name}/archive', 'archive', 'ContainerArchive'),
  route('PUT', '/containers/{name}/archive', 'archive', 'PutContainerArchive'),
  route('GET', '/containers/{name}/export', 'archive', 'ContainerExport'),

  route('POST', '/containers/{name}/exec', 'exec', 'ContainerExec'),
  route('POST', '/exec/{name}/start', 'exec', 'ExecStart'),
  route('POST', '/exec/{name}/resize', 'exec', 'ExecResize'),
  route('GET', '/exec/{name}/json', 'exec', 'ExecInspect'),

  route('GET', '/images/json', 'images', 'ImageList'),
  route('POST', '/images/create', 'images', 'ImageCreate'),
  route('POST', '/images/load', 'images', 'ImageLoad'),
  route('GET', '/images/search', 'images', 'ImageSearch'),
  route('POST', '/images/prune', 'images', 'ImagePrune'),
  route('GET', '/images/get', 'imageExport', 'ImageGetAll'),
  route('GET', '/images/{name}/get', 'imageExport', 'ImageGet'),
  route('GET', '/images/{name}/json', 'images', 'ImageInspect'),
  route('GET', '/images/{name}/history', 'images', 'ImageHistory'),
  route('POST', '/images/{name}/push', 'images', 'ImagePush'),
  route('POST', '/images/{name}/tag', 'images', 'ImageTag'),
  route('DELETE', '/images/{name}', 'images', 'ImageDelete'),

  route('POST', '/build', 'build', 'ImageBuild'),
  route('POST', '/build/prune', 'build', 'BuildPrune'),
  route('POST', '/build/cancel', 'build', 'BuildCancel'),
  route('POST', '/session', 'session', 'Session'),
  route('POST', '/grpc', 'session', 'GRPC'),

  route('GET', '/volumes', 'volumes', 'VolumeList'),
  route('POST', '/volumes/create', 'volumes', 'VolumeCreate'),
  route('POST', '/volumes/prune', 'volumes', 'VolumePrune'),
  route('GET', '/volumes/{name}', 'volumes', 'VolumeInspect'),
  route('PUT', '/volumes/{name}', 'volumes', 'VolumeUpdate'),
  route('DELETE', '/volumes/{name}', 'volumes', 'VolumeDelete'),

  route('GET', '/networks', 'networks', 'NetworkList'),
  route('POST', '/networks/create', 'networks', 'NetworkCreate'),
  route('POST', '/networks/prune', 'networks', 'NetworkPrune'),
  route('POST', '/networks/{name}/connect', 'networks', 'NetworkConnect'),
  route('POST', '/networks/{name}/disconnect', 'networks', 'NetworkDisconnect'),
  route('GET', '/networks/{name}', 'networks', 'NetworkInspect'),
  route('DELETE', '/networks/{name}', 'networks', 'NetworkDelete'),

  route('GET', '/distribution/{name}/json', 'distribution', 'DistributionInspect'),

  route('GET', '/plugins', 'plugins', 'PluginList'),
  route('GET', '/plugins/privileges', 'plugins', 'GetPluginPrivileges'),
  route('POST', '/plugins/pull', 'plugins', 'PluginPull'),
  route('POST', '/plugins/create', 'plugins', 'PluginCreate'),
  route('GET', '/plugins/{name}/json', 'plugins', 'PluginInspect'),
  route('POST', '/plugins/{name}/enable', 'plugins', 'PluginEnable'),
  route('POST', '/plugins/{name}/disable', 'plugins', 'PluginDisable'),
  route('POST', '/plugins/{name}/upgrade', 'plugins', 'PluginUpgrade'),
  route('POST', '/plugins/{name}/push', 'plugins', 'PluginPush'),
  route('POST', '/plugins/{name}/set', 'plugins', 'PluginSet'),
  route('DELETE', '/plugins/{name}', 'plugins', 'PluginDelete'),

  route('GET', '/swarm', 'swarm', 'SwarmInspect'),
  route('POST', '/swarm/init', 'swarm', 'SwarmInit'),
  route('POST', '/swarm/join', 'swarm', 'SwarmJoin'),
  route('POST', '/swarm/leave', 'swarm', 'SwarmLeave'),
  route('POST', '/swarm/update', 'swarm', 'SwarmUpdate'),
  route('GET', '/swarm/unlockkey', 'swarm', 'SwarmUnlockkey'),
  route('POST', '/swarm/unlock', 'swarm', 'SwarmUnlock'),

  route('GET', '/nodes', 'nodes', 'NodeList'),
  route('GET', '/nodes/{id}', 'nodes', 'NodeInspect'),
  route('DELETE', '/nodes/{id}', 'nodes', 'NodeDelete'),
  route('POST', '/nodes/{id}/update', 'nodes', 'NodeUpdate'),

  route('GET', '/services', 'services', 'ServiceList'),
  route('POST', '/services/create', 'services', 'ServiceCreate'),
  route('GET', '/services/{id}', 'services', 'ServiceInspect'),
  route('DELETE', '/services/{id}', 'services', 'ServiceDelete'),
  route('POST', '/services/{id}/update', 'services', 'ServiceUpdate'),
  route('GET', '/services/{id}/logs', 'services', 'ServiceLogs'),

  route('GET', '/tasks', 'tasks', 'TaskList'),
  route('GET', '/tasks/{id}', 'tasks', 'TaskInspect'),
  route('GET', '/tasks/{id}/logs', 'tasks', 'TaskLogs'),

  route('GET', '/secrets', 'secrets', 'SecretList'),
  route('POST', '/secrets/create', 'secrets', 'SecretCreate'),
  route('GET', '/secrets/{id}', 'secrets', 'SecretInspect'),
  route('DELETE', '/secrets/{id}', 'secrets', 'SecretDelete'),
  route('POST', '/secrets/{id}/update', 'secrets', 'SecretUpdate'),

  route('GET', '/configs', 'configs', 'ConfigList'),
  route('POST', '/configs/create', 'configs', 'ConfigCreate'),
  route('GET', '/configs/{id}', 'configs', 'ConfigInspect'),
  route('DELETE', '/configs/{id}', 'configs', 'ConfigDelete'),
  route('POST', '/configs/{id}/update', 'configs', 'ConfigUpdate'),
];
