// The communities the signed-in staff member may see (GET /api/communities, scoped by the server),
// and whether a write must say which one it goes to.
import { ref } from 'vue'
import { api, messageOf } from '../api'
import { session } from '../store'

/** Staff above a community (district, platform) must say which community a write goes to. */
export const needsCommunity = () => !session.user?.community_id

/** The community list for one page: load() once; on failure the list is empty and `error` says why. */
export function useCommunities() {
  const communities = ref([])
  const error = ref('')
  const load = async () => {
    error.value = ''
    try {
      communities.value = (await api.get('/api/communities')).items || []
    } catch (e) {
      communities.value = []
      error.value = messageOf(e, '社区列表加载失败')
    }
  }
  const nameOf = (id) => communities.value.find((c) => c.id === id)?.name
  return { communities, error, load, nameOf }
}
